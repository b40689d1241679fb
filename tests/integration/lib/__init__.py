"""Shared test support for the integration tests: the real Claude CLI from
npm (claude_cli) and a stand-in for the Messages API (model_standin)."""
