"""A real local Redis Cluster for the tests: 3 primaries + 3 replicas of the machine's ``redis-server``
(``--cluster-enabled yes``) on free loopback ports, joined by ``redis-cli --cluster create``, and RabbitMQ
(the machine's, 127.0.0.1:5672) with the test's queue purged.

Both engines exist on every development and CI machine: a missing one FAILS the tests that need it (never a
skip). ``LocalCluster`` can kill a primary (its replica takes over) and move a slot between primaries.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.cluster import RedisCluster

RABBITMQ_URL = os.environ.get("BOTTEGA_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672")
NODE_TIMEOUT_MS = 1500  # a primary silent this long is failed over (replica promoted) within a few seconds
START_TIMEOUT_SECONDS = 30.0


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_ports(count: int) -> list[int]:
    """``count`` ports whose cluster-bus ports (+10000) are free too."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randint(20000, 45000)
        if port not in ports and _port_free(port) and _port_free(port + 10000):
            ports.append(port)
    return ports


@dataclass
class Node:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5, single_connection_client=True)


class LocalCluster:
    """Six ``redis-server`` processes in cluster mode, joined 3 primaries + 3 replicas."""

    def __init__(self, workdir: Path, *, primaries: int = 3) -> None:
        server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        if not server or not cli:
            raise AssertionError("redis-server and redis-cli must be installed for the Redis Cluster tests "
                                 "(Debian: apt-get install redis-server)")
        self.workdir = workdir
        self.cli = cli
        workdir.mkdir(parents=True, exist_ok=True)
        self.nodes: dict[int, Node] = {}
        for port in free_cluster_ports(2 * primaries):
            self.nodes[port] = self._start(server, port)
        for node in self.nodes.values():
            self._wait_ping(node)
        addresses = [node.address for node in self.nodes.values()]
        created = subprocess.run([cli, "--cluster", "create", *addresses, "--cluster-replicas", "1",
                                  "--cluster-yes"], capture_output=True, text=True, timeout=60)
        if created.returncode != 0:
            self.stop()
            raise AssertionError(f"redis-cli --cluster create failed:\n{created.stdout}\n{created.stderr}")
        self.wait_ok()
        self.wait_replicas_online()

    def _start(self, server: str, port: int) -> Node:
        folder = self.workdir / str(port)
        folder.mkdir(exist_ok=True)
        with open(folder / "redis.log", "ab") as log:  # the child keeps its own descriptor
            process = subprocess.Popen(
                [server, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", str(folder / "nodes.conf"), "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                 "--dir", str(folder), "--save", "", "--appendonly", "no", "--daemonize", "no",
                 "--cluster-replica-validity-factor", "0", "--protected-mode", "no"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return Node(port, process)

    @staticmethod
    def _wait_ping(node: Node) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            try:
                if node.client().ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise AssertionError(f"redis-server on port {node.port} did not start")

    @property
    def url(self) -> str:
        """``REDIS_URL`` for Bottega: any node names the cluster."""
        return f"redis+cluster://{next(iter(self.live_nodes())).address}"

    def live_nodes(self) -> list[Node]:
        return [node for node in self.nodes.values() if node.process.poll() is None]

    def client(self) -> RedisCluster:
        node = self.live_nodes()[0]
        return RedisCluster(host="127.0.0.1", port=node.port, socket_timeout=5)

    def wait_ok(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Until every live node says cluster_state:ok and agrees that every slot is served."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                infos = [node.client().cluster("info") for node in self.live_nodes()]
                if all(info.get("cluster_state") == "ok" and int(info.get("cluster_slots_ok", 0)) == 16384
                       for info in infos):
                    return
            except redis.RedisError:
                pass
            time.sleep(0.1)
        raise AssertionError("the Redis Cluster did not reach cluster_state:ok")

    def wait_replicas_online(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Until every primary has a replica that finished its first sync (WAIT counts only those)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            infos = [node.client().info("replication") for node in self.primaries()]
            if all(any(isinstance(value, dict) and value.get("state") == "online" for value in info.values())
                   for info in infos):
                return
            time.sleep(0.1)
        raise AssertionError("the replicas did not finish their first sync")

    def primaries(self) -> list[Node]:
        return [node for node in self.live_nodes() if node.client().info("replication")["role"] == "master"]

    def flush(self) -> None:
        """Every primary's data gone (between tests); the script caches too."""
        for node in self.primaries():
            node.client().flushall()
            node.client().script_flush()

    def node_of_key(self, key: str) -> Node:
        """The primary serving ``key``'s slot now (a fresh client reads the slot map)."""
        client = self.client()
        try:
            return self.nodes[int(client.get_node_from_key(key).port)]
        finally:
            client.close()

    def node_of_slot(self, slot: int) -> Node:
        client = self.client()
        try:
            return self.nodes[int(client.nodes_manager.get_node_from_slot(slot).port)]
        finally:
            client.close()

    def kill(self, node: Node) -> None:
        """SIGKILL one node (a primary: its replica is promoted after NODE_TIMEOUT_MS)."""
        os.killpg(node.process.pid, signal.SIGKILL)
        node.process.wait(timeout=10)

    def replica_of(self, primary: Node) -> Node:
        return next(node for node in self.live_nodes()
                    if node.client().info("replication").get("master_port") == primary.port)

    def wait_promoted(self, replica: Node, timeout: float = 60.0) -> None:
        """Until ``replica`` has taken over its dead primary's slots and the cluster is ok again. (A node that
        keeps nothing on disk must not come back before this: back as the primary it was, empty, it would be
        its replica's primary again, and the replica would copy the emptiness.)"""
        deadline = time.monotonic() + timeout
        while replica.client().info("replication")["role"] != "master":
            assert time.monotonic() < deadline, "the replica was not promoted"
            time.sleep(0.1)
        self.wait_ok(timeout)

    def restart(self, node: Node) -> None:
        """Start a killed node again on its port and cluster config: it rejoins (a former primary whose replica
        took over comes back as that replica's replica)."""
        server = shutil.which("redis-server")
        assert server
        self.nodes[node.port] = self._start(server, node.port)
        self._wait_ping(self.nodes[node.port])

    def move_slot(self, slot: int, to: Node) -> None:
        """Move ``slot`` (and its keys) to primary ``to`` the way ``redis-cli --cluster reshard`` does it:
        IMPORTING / MIGRATING, MIGRATE in batches, then SETSLOT NODE everywhere."""
        source = self.node_of_slot(slot)
        if source.port == to.port:
            return
        target_id, source_id = to.client().cluster("myid"), source.client().cluster("myid")
        to.client().cluster("setslot", slot, "importing", source_id)
        source.client().cluster("setslot", slot, "migrating", target_id)
        while True:
            keys = source.client().cluster("getkeysinslot", slot, 100)
            if not keys:
                break
            source.client().migrate("127.0.0.1", to.port, keys, 0, 5000)
        for node in self.primaries():
            node.client().cluster("setslot", slot, "node", target_id)
        self.wait_ok()

    def stop(self) -> None:
        for node in self.nodes.values():
            if node.process.poll() is None:
                os.killpg(node.process.pid, signal.SIGKILL)
                node.process.wait(timeout=10)


def purge_rabbitmq(url: str = RABBITMQ_URL, queues: tuple[str, ...] = ("default", "bulk")) -> None:
    """Empty the send queue (and its delay and dead-letter queues) left by an earlier test; fails, never
    skips, when RabbitMQ does not answer."""
    import pika

    try:
        connection = pika.BlockingConnection(pika.URLParameters(url))
    except pika.exceptions.AMQPError as error:
        raise AssertionError(f"RabbitMQ does not answer at {url} ({type(error).__name__}); it runs on every "
                             "development and CI machine (systemctl start rabbitmq-server)") from None
    try:
        channel = connection.channel()
        for name in (name for queue in queues for name in (queue, f"{queue}.DQ", f"{queue}.XQ")):
            try:
                channel.queue_purge(name)
            except pika.exceptions.ChannelClosedByBroker:  # not declared yet
                channel = connection.channel()
    finally:
        connection.close()


ENGINES = ["redis", "cluster+rabbitmq"]  # a Procfile test's params: one Redis server, or a cluster with RabbitMQ


def engine_cluster(request) -> LocalCluster | None:
    """For a fixture parametrized over ``ENGINES``: the session's cluster, emptied, with RabbitMQ's queues purged
    ("cluster+rabbitmq"), or None (one Redis server with Dramatiq's Redis broker)."""
    if getattr(request, "param", "redis") != "cluster+rabbitmq":
        return None
    cluster: LocalCluster = request.getfixturevalue("redis_cluster")
    cluster.flush()
    purge_rabbitmq()
    return cluster
