"""Helpers for the integration tests. Test modules import from here (and
ask conftest.py's fixtures by name); no test module imports another.

  common         paths of the programs under test, free_port, wait_for_port,
                 stop_process, docker, make_client_key
  wait           wait_until: poll a condition until a deadline
  agent          Agent (a convocate-agent on loopback), register_agent
  agent_helpers  create/restart retried past CPU admission, error_of,
                 session homes, docker inspect of a session's container
  shell_cli      convocate (the shell's CLI), attach_type_detach
  tui            Tui (the TUI in a private tmux server), Raw (the bytes it
                 wrote: bell, OSC 9), until_admitted
  pairing        convocate-host init-shell / init-agent on local roots,
                 snapshot of a tree
  remote         Target (an sshd container to provision), cached_image,
                 operator_keys, engine_target
  fleet_hosts    Host (sshd + dockerd container), Lan (a bridge of hosts)
  netcluster     NetCluster (agents in network namespaces), Feed
  netns          bridge, namespace + veth, waits for status-serve's feed and
                 an agent's listener (netcluster and bench/fleet.py)
  status_serve   Shell (a status-serve on paired roots), Subscriber (its feed)
  feed_lines     FeedLines: status-serve's local feed a line at a time (under
                 Feed, Subscriber and the fleet row's reader)
  status_channel StatusChannel (status-serve with an agent's side spoken by
                 OpenSSH, to put events on the channel)
  pipeline_pair  an agent with --test-hooks and a status-serve, for event loads
  agent_state    an agent's state files under --root (both metadata layouts),
                 crash leftovers
  mixed_ops      paramiko RPC clients driving mixed ops, for crash tests
  paramiko_rpc   paramiko connect (TCP_NODELAY) and one request on a fresh
                 channel: raw_call (bytes), rpc (decoded); tests and bench
  paramiko_attach Attached (an operator on the attach subsystem through
                 paramiko), agent_transport
  procfs         processes from /proc: children_of, descendants,
                 smaps_rollup_kib
  tiny_disk      a small loop-mounted ext4, and filling it
  claude_cli     the real Claude CLI from npm, installed once and cached
  model_standin  a stand-in for the Messages API that sessions reach
  bulk           create_many: many sessions through the real create RPC
  claude_session the real Claude in a NetCluster agent's session
                 (claude_cluster: one agent with the wrapper for
                 --permission-mode default; credentials, prompt)
"""
