"""A shell host and an agent host provisioned end to end over SSH, nothing
but convocate-host doing the work (SPEC 11).

Each host is a Debian container running OpenSSH and its own Docker engine
(dockerd inside, /var/lib/docker on a volume; the capabilities that work
here instead of --privileged, see ENGINEERING.md). Besides Docker's default
bridge, which only carries apt's traffic to the package registry, each host
gets a veth on a bridge this test makes, 10.78.0.0/24: the operator (this
machine) is .1, the shell .12, the agent .13. Every connection the test or
the product opens goes to those addresses.

The walk, as an operator would do it:
  install --role agent / --role shell on each (packages, claude, ufw), twice;
  init-shell --host: deploys the binaries and runs `convocate install` there;
  the shell's engine gets the session image (as `make image` would give it);
  on the shell, init-agent --host the agent: binary, pairing, image
  transfer into the agent's own engine, current-image, twice;
  the daemons are started by hand, as the no-systemd notice says;
  on the shell, `convocate new` puts a session on the agent, its container
  runs in the agent's engine with its home bind-mounted from the agent's
  disk, `convocate attach` reaches its tmux, and the agent's status events
  reach the shell's status-serve."""
import json
import os
import shutil
import subprocess
import time

import pytest

from lib.common import BUILD, HOST_BIN, runs_build_on_target
from lib.fleet_hosts import Host, sh, wait_tcp
from lib.remote import cached_image
from lib.shell_cli import attach_type_detach
from lib.wait import wait_until

pytestmark = runs_build_on_target  # lib/common.py says why

LABEL = "convocate.test=fleet"
NET = "10.78.0"

# dockerd and the tools the test uses to look inside; everything else the
# hosts need comes from `convocate-host install`.
DOCKERFILE = """\
ARG BASE
FROM ${BASE}
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      docker.io iproute2 procps \\
 && rm -rf /var/lib/apt/lists/*
"""

# Stops the rsyslogd this container runs, if any, and starts one that reads
# the current configuration.
RESTART_RSYSLOG = """\
if [ -f /run/rsyslogd.pid ]; then kill "$(cat /run/rsyslogd.pid)" 2>/dev/null || true; fi
i=0; while [ -f /run/rsyslogd.pid ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
rm -f /run/rsyslogd.pid
rsyslogd
"""


def finish(proc, what, timeout=900):
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"{what} failed (exit {proc.returncode}):\n{out}"
    return out


def both(fleet, cmd_for, what, **kw):
    """The same convocate-host command against both hosts at once."""
    procs = [(h, fleet.host_cmd(h, *cmd_for(h), **kw)) for h in (fleet.shell, fleet.agent)]
    return {h.name: finish(p, f"{what} on {h.name}") for h, p in procs}


@pytest.fixture(scope="module")
def engine_target_image(target_image):
    return cached_image("convocate-fleet-target", DOCKERFILE, target_image)


@pytest.fixture
def fleet(lan, engine_target_image):
    """The shell host (.12) and the agent host (.13) on one lan."""
    f = lan(NET, "cvf", LABEL, "convocate-fleet-")
    f.shell = f.add(Host, engine_target_image, "shell", 12)
    f.agent = f.add(Host, engine_target_image, "agent", 13)
    return f


def version():
    return sh(HOST_BIN, "version").stdout.split()[-1]


def test_shell_and_agent_provisioned_over_ssh_run_an_attachable_session(fleet, test_image):
    shell, agent = fleet.shell, fleet.agent
    role = {"shell": "shell", "agent": "agent"}

    # 1. install, both hosts at once; the first run records the host keys.
    outs = both(fleet, lambda h: ("install", "--role", role[h.name], "--no-reboot"), "install",
                accept_new=True)
    for name, out in outs.items():
        assert "packages" in out, out
    for h in (shell, agent):
        assert h.sh("id -u claude").strip() == "1337"
        for lib in ("libssh-4", "libjansson4"):
            assert "ok installed" in h.sh(f"dpkg-query -W -f='${{Status}}' {lib}"), lib
    outs = both(fleet, lambda h: ("install", "--role", role[h.name], "--no-reboot"),
                "second install")
    for name, out in outs.items():
        assert out.rstrip().endswith("nothing changed"), f"{name}:\n{out}"

    # 2. init-shell --host: the binaries and `convocate install` there.
    out = finish(fleet.host_cmd(shell, "init-shell"), "init-shell")
    for name in ("convocate", "convocate-host", "convocate-agent"):
        local = sh("sha256sum", os.path.join(BUILD, "src", name)).stdout.split()[0]
        remote = shell.sh(f"sha256sum /usr/local/bin/{name}").split()[0]
        assert remote == local, f"/usr/local/bin/{name} on the shell differs"
    assert shell.sh("test -f /etc/convocate/status_host_ed25519_key && "
                    "test -f /etc/convocate/rsyslog-ca/server.crt && echo yes").strip() == "yes"
    out = finish(fleet.host_cmd(shell, "init-shell"), "second init-shell")
    assert out.rstrip().endswith("nothing changed"), out

    # The daemons, started by hand as the notice says when systemd is absent.
    shell.sh("setsid convocate status-serve -v >/var/log/convocate-status.log 2>&1 "
             "</dev/null &")
    wait_tcp(shell.ip, 223, 30, "status-serve on the shell")

    # 3. The shell's engine holds the session image, as `make image` leaves it.
    tag = f"convocate:{version()}"
    save = subprocess.Popen([shutil.which("docker") or "docker", "save", test_image],
                            stdout=subprocess.PIPE)
    load = subprocess.run([shutil.which("docker") or "docker", "exec", "-i", shell.cid,
                           "docker", "load"], stdin=save.stdout, capture_output=True,
                          text=True, timeout=600)
    save.stdout.close()
    assert save.wait() == 0 and load.returncode == 0, load.stderr
    shell.sh(f"docker tag {test_image} {tag}")

    # 4. On the shell, as its root: init-agent over SSH with the operator's key.
    shell.sh("install -d -m 0700 /root/.ssh")
    with open(fleet.key) as f:
        key_text = f.read()
    r = subprocess.run([shutil.which("docker") or "docker", "exec", "-i", shell.cid, "sh", "-c",
                        "umask 077 && cat > /root/.ssh/id_ed25519"], input=key_text,
                       text=True, capture_output=True)
    assert r.returncode == 0, r.stderr
    shell.sh(f"echo '{agent.ip} {agent.host_key[0]} {agent.host_key[1]}' "
             ">/root/.ssh/known_hosts")
    init_agent = ("convocate-host", "init-agent", "--host", agent.ip, "--user", "op",
                  "--agent-addr", f"{agent.ip}:222", "--shell-host", f"{shell.ip}:223")
    r = shell.run(*init_agent)
    assert r.returncode == 0, r.stdout + r.stderr
    agent_id = agent.sh("cat /etc/convocate-agent/agent-id").strip()
    assert agent.sh("cat /etc/convocate-agent/current-image").strip() == tag
    image_id = shell.sh(f"docker image inspect -f '{{{{.Id}}}}' {tag}").strip()
    assert agent.sh(f"docker image inspect -f '{{{{.Id}}}}' {tag}").strip() == image_id
    assert agent.sh("ls /tmp | grep -c convocate-image- || true").strip() == "0"
    r = shell.run(*init_agent)
    assert r.returncode == 0 and r.stdout.rstrip().endswith("nothing changed"), \
        r.stdout + r.stderr

    agent.sh("setsid convocate-agent serve -v >/var/log/convocate-agent.log 2>&1 </dev/null &")
    wait_tcp(agent.ip, 222, 30, "convocate-agent on the agent")
    # rsyslogd with the drop-ins init-shell/init-agent wrote (the package may
    # have started one before they existed).
    for h in (shell, agent):
        h.sh(RESTART_RSYSLOG)
    wait_tcp(shell.ip, 514, 30, "rsyslog's TLS listener on the shell")

    # 5. A session through the shell's CLI, running on the agent's engine.
    deadline = time.monotonic() + 90
    while True:
        r = shell.run("convocate", "new", "fleet-one", "--agent", agent_id)
        if r.returncode == 0 or "admission denied: cpu" not in r.stderr \
                or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert r.returncode == 0, r.stdout + r.stderr

    # 6. Attach through the shell's CLI under a terminal: the header starts
    # the container on the agent's engine.
    assert attach_type_detach(shutil.which("docker") or "docker",
                              ["exec", "-it", shell.cid, "convocate", "attach", "fleet-one"],
                              "echo fleet-$((6*7)) > ~/attached; echo fleet-$((6*7))",
                              "fleet-42") == 0

    r = shell.run("convocate", "ls", "--json")
    assert r.returncode == 0, r.stderr
    [session] = json.loads(r.stdout)
    assert session["name"] == "fleet-one" and session["state"] == "R", session
    assert session["agent"] == agent_id
    uuid = session["uuid"]
    running = agent.sh(f"docker ps --filter label=convocate.session={uuid} "
                       "--format '{{.Image}}'").split()
    assert running == [tag], running
    mounts = json.loads(agent.sh(f"docker inspect -f '{{{{json .Mounts}}}}' "
                                 f"convocate-session-{uuid}"))
    homes = [m["Source"] for m in mounts if m["Destination"] == "/home/claude"]
    assert len(homes) == 1 and uuid in homes[0], mounts
    # What was typed landed in the home on the agent's own disk.
    assert agent.sh(f"cat {homes[0]}/attached").strip() == "fleet-42"

    # 7. Logs: the session container logs through the syslog driver, and a
    # container's output on the agent's engine reaches the shell's file for
    # this agent over TLS.
    log_type = agent.sh(f"docker inspect -f '{{{{.HostConfig.LogConfig.Type}}}}' "
                        f"convocate-session-{uuid}").strip()
    assert log_type == "syslog", log_type
    nonce = os.urandom(4).hex()
    agent.sh(f"docker run --rm --log-driver syslog --log-opt tag=convocate-session-{uuid} "
             f"--entrypoint /bin/echo {tag} fleet-log-{nonce}")
    shell_log = f"/var/log/convocate-agent/{agent_id}.log"
    wait_until(lambda: f"fleet-log-{nonce}" in (shell.sh(f"cat {shell_log}", check=False) or ""),
               60, f"fleet-log-{nonce} in {shell_log}", interval=1)

    # 8. The agent's status channel reached the shell's status-serve.
    wait_until(lambda: "authenticated with" in (shell.sh("cat /var/log/convocate-status.log")
                                                or ""),
               30, "the agent's status channel on the shell", interval=1,
               detail=lambda: shell.sh("cat /var/log/convocate-status.log") +
               agent.sh("cat /var/log/convocate-agent.log"))
