"""The fixtures every integration test module may ask for by name. What
they build lives in lib/ (lib/__init__.py says which module holds what);
test modules import helpers from lib, never from another test module.

Agents on loopback:
  test_image    the session test image's tag (built once, cached by content)
  tmp_root      a scratch directory, removed afterwards
  start_agent   factory: a started lib.agent.Agent under its own root
  agent         one started Agent
  shell_root    an empty shell root
  single        (shell_root, agent): one agent registered with the shell
  two_agents    (shell_root, a, b): two agents registered with the shell
  tui_factory   factory: a lib.tui.Tui on a shell root, killed afterwards
  status_channel factory: status_channel(shell_root, agent) -> a started
                lib.status_channel.StatusChannel, stopped afterwards
  roots         three empty roots (a shell and two agents) to pair

Hosts reached over SSH (containers):
  target_image       an sshd target image built FROM the test image
  libs_target_image  the same with the libraries our programs link
  target             a started lib.remote.Target
  lan                factory: a lib.fleet_hosts.Lan (bridge + host containers)

The real Claude against the model stand-in:
  claude_bin    the real Claude CLI's executable (lib.claude_cli, cached)
  standin       a started lib.model_standin.ModelStandin, stopped afterwards

Hosts in network namespaces (root only):
  net           a lib.netcluster.NetCluster: status-serve and two agents,
                every agent connected to the shell"""
import os
import subprocess
import tempfile

import pytest

# Assertions in lib/ report their operands as they do in test modules.
pytest.register_assert_rewrite("lib")

from lib import claude_cli  # noqa: E402
from lib.agent import Agent, register_agent  # noqa: E402
from lib.common import remove_tree, unmount_under  # noqa: E402
from lib.fleet_hosts import Lan  # noqa: E402
from lib.model_standin import ModelStandin  # noqa: E402
from lib.netcluster import NetCluster  # noqa: E402
from lib.remote import LIBS_DOCKERFILE, TARGET_DOCKERFILE, Target, cached_image  # noqa: E402
from lib.status_channel import StatusChannel  # noqa: E402
from lib.tui import Tui  # noqa: E402

# Modules written before lib/ existed import these from conftest; new code
# imports them from lib.
from lib.common import (AGENT_BIN, BUILD, DOCKER, REPO, SHELL_BIN, docker,  # noqa: E402,F401
                        free_port, make_client_key, stop_process, wait_for_port)
from lib.shell_cli import attach_type_detach, convocate  # noqa: E402,F401


@pytest.fixture(scope="session", autouse=True)
def unmount_pytest_roots(tmp_path_factory):
    """`convocate-agent install` bind-mounts <root>/home/claude nosuid,nodev.
    Roots made in pytest's tmp_path are removed by pytest itself, which
    cannot remove a mount point: the mounts below this run's base directory
    (and only those) are undone at the end."""
    yield
    unmount_under(str(tmp_path_factory.getbasetemp()))


@pytest.fixture(scope="session")
def test_image():
    tag = os.environ.get("CONVOCATE_TEST_IMAGE", "")
    if not tag:
        r = subprocess.run(["bash", os.path.join(REPO, "scripts", "build-image.sh"), "test"],
                           capture_output=True, text=True, timeout=1200)
        assert r.returncode == 0, f"test image build failed:\n{r.stderr[-4000:]}"
        tag = r.stdout.strip().splitlines()[-1]
        os.environ["CONVOCATE_TEST_IMAGE"] = tag
    return tag


@pytest.fixture
def tmp_root():
    d = tempfile.mkdtemp(prefix="convocate-test-")
    yield d
    remove_tree(d)


@pytest.fixture
def start_agent(test_image):
    """Factory: start_agent(docker_host=None, extra_args=(), image=<test image>)."""
    started = []

    def factory(docker_host=None, extra_args=(), image=None):
        root = tempfile.mkdtemp(prefix="convocate-agent-")
        a = Agent(root, image or test_image, docker_host=docker_host, extra_args=extra_args)
        started.append(a)
        a.start()
        return a

    yield factory
    for a in started:
        a.cleanup()
        remove_tree(a.root)


@pytest.fixture
def agent(start_agent):
    return start_agent()


@pytest.fixture
def shell_root():
    d = tempfile.mkdtemp(prefix="convocate-shell-")
    yield d
    remove_tree(d)


@pytest.fixture
def single(start_agent, shell_root):
    a = start_agent()
    register_agent(shell_root, a)
    return shell_root, a


@pytest.fixture
def two_agents(start_agent, shell_root):
    a, b = start_agent(), start_agent()
    register_agent(shell_root, a)
    register_agent(shell_root, b)
    return shell_root, a, b


@pytest.fixture
def tui_factory():
    """Factory: tui_factory(shell_root, width=100, height=30)."""
    started = []

    def factory(shell_root, **kw):
        t = Tui(shell_root, **kw)
        started.append(t)
        return t

    yield factory
    for t in started:
        t.close()


@pytest.fixture
def status_channel(tmp_root):
    """Factory: status_channel(shell_root, agent) -> a StatusChannel (a real
    status-serve on shell_root, the agent's side spoken by OpenSSH); every
    one made is stopped afterwards."""
    started = []

    def factory(shell_root, agent):
        started.append(StatusChannel(shell_root, agent, tmp_root))
        return started[-1]

    yield factory
    for s in started:
        s.stop()


@pytest.fixture
def roots():
    made = [tempfile.mkdtemp(prefix=f"convocate-pair-{n}-") for n in ("shell", "a1", "a2")]
    yield made
    for d in made:
        remove_tree(d)


@pytest.fixture(scope="session")
def claude_bin():
    return claude_cli.executable()


@pytest.fixture
def standin():
    api = ModelStandin().start()
    yield api
    api.stop()


@pytest.fixture(scope="session")
def target_image(test_image):
    """An OpenSSH server target built FROM the test image."""
    return cached_image("convocate-remote-target", TARGET_DOCKERFILE, test_image)


@pytest.fixture(scope="session")
def libs_target_image(target_image):
    return cached_image("convocate-update-target", LIBS_DOCKERFILE, target_image)


@pytest.fixture
def target(target_image):
    t = Target(target_image)
    yield t
    t.cleanup()


@pytest.fixture
def lan():
    """Factory: lan(net, tag, label, home_prefix) -> a lib.fleet_hosts.Lan;
    add hosts with its add(). At teardown it goes with every host added,
    also when adding one failed."""
    made = []

    def factory(*args):
        made.append(Lan(*args))
        return made[-1]

    yield factory
    for m in made:
        m.cleanup()


@pytest.fixture
def net(test_image):
    c = NetCluster(2, test_image)
    try:
        c.start_status()
        for a in c.agents:
            a.start()
        c.wait_connected()
        yield c
    finally:
        c.cleanup()
