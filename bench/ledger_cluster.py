"""Ledger cluster throughput, end to end: trades published by the bridge's StreamLedger into
the R3 ``LEDGER`` stream of a real three-server NATS cluster, and committed in a signed block
by each of the three organisations' node processes (``tracepay ledger-node``).

The trades are a market's (farm -> wholesaler -> 50 stalls -> shoppers), gateway-signed and
turned into the bridge's three entries each (public trade, private trade, allocation) by the
bridge's own intake before any clock starts (``bench/cluster_parts/market.py``): every node
checks each trade's gateway signature, its device and each allocation against its own
history. Two phases, one JSON line:

* **throughput** (``--trades``): the trades are handed to ``StreamLedger`` ``--batch`` at a
  time and flushed (messages of ``--block-max`` entries, each flush returns when JetStream
  acknowledged every message), as fast as the stream takes them. ``trades_per_s`` runs from
  the first hand-over until every node's ``/healthz`` shows the last message committed.
* **sustained** (``--paced-s`` seconds): more trades of the same market handed over at a
  fixed rate (``--rate``; default half the measured throughput, at most 5,000/s: latency
  at a load the nodes keep up with on a shared machine, not queueing behind a backlog) in
  batches of ``--paced-batch``. ``p50_ms``/``p99_ms``: per batch, from its hand-over to the
  moment all three nodes were first seen at or past the stream sequence of its last message
  (each node signs its block with its own key before it records the sequence). The nodes
  are sampled through their read API (``/healthz``'s ``stream_seq``) every 20 ms by a
  polling thread, so a figure is late by up to one poll (20 ms plus the three requests).
  With ``--faults`` this phase runs the drill, by the clock: at 20 % of its time the stream
  leader's nats-server is killed -9, at 35 % the wholesale market's node process is killed
  -9, at 55 % the server is restarted, at 70 % the node; ``trades_per_s_during_faults`` is the trades acknowledged by
  the stream from the first kill until the node's restart over that time, and ``catch_up_s``
  runs from the node's restart (process start-up included) until its committed sequence
  reaches the other nodes' (``node_start_up_s`` of it until its ``/healthz`` answers);
  ``p50_ms``/``p99_ms`` are then those of the drill (a batch
  committed on two nodes waits for the killed one), ``bridge_longest_flush_s`` the longest
  flush (publishing waits for a new stream leader) and ``nodes_longest_gap_s`` the longest
  time a node that stayed up committed nothing after the server's kill (longer than the
  flush: the node itself was waiting, e.g. to make its consumer afresh).

Counted afterwards on every node's own store (opened read-only, every leaf of every block):
``lost`` (an entry of a handed-over trade on no leaf of some node) and ``duplicated`` (a
record id on more than one leaf of some node); ``roots_identical``: every node's signed tree
head names the same height, block hash, root and size. ``ratio_vs_solo``: against
``bench/ledger_commit.py``'s in-process ledger committing the throughput phase's entries
(no validation there, no network, one process).

Where the time goes (``where_the_time_goes``), measured, not estimated: CPU µs per trade of
every process from ``/proc`` (this process, which is the bridge's side and the polling
thread; each node; the nats-servers), and ``cpu_bound_trades_per_s``, the rate two idle cores could sustain at that
CPU cost; each node's own stage timings from its ``/healthz`` (fetch wait, parse, validate,
block build + sign, store commit, ack round trip, µs per trade); the bridge side's submit,
encode and publish-ack wait per trade. The machine is shared: ``load_avg_1m`` says how busy.

Measured on the development machine (2 cores shared with other work; medians of three
default runs at load average 4-5): about 1,090 trades/s end to end against the goal of
5,000 (450-1,000 in earlier runs at load 6-10), p99 about 290 ms at half that rate (p50
about 90 ms). The time goes to the nodes: 1.4 ms CPU per trade over all processes, 84 % of
it in the three nodes (about 380-400 µs each), 9 % on the bridge's side, 8 % in the
nats-servers, so two idle cores could not pass about 1,450 trades/s at that cost.
Inside a node, validation is two thirds of its time and the trade contract most of that:
one node's ``apply`` alone on the same messages (one process) costs 362 µs CPU per trade,
of which the contract 171 µs (checking the gateway's signature over the canonical trade
113 µs, an Ed25519 verify alone about 107 µs on this VM; the trade's schema 24 µs), the
rest of validation
68 µs, parsing the message 37 µs, building and signing the block 53 µs, the store commit
11 µs; the follower, its ack round trip and the read API add the rest. Every node checks
every trade itself, by design, so that cost is paid three times: 5,000 trades/s on two
cores would leave under 400 µs CPU per trade for everything, about what one node spends
now, and a node applies messages on one thread, so even on cores of its own one node
stops near 2,800 trades/s unless its independent per-trade checks (the contract) run in
parallel or get cheaper. With ``--faults`` (medians of three): nothing lost or doubled on
any node, the roots identical; the bridge's flush waited 5.8 s (5.3-7.3) for a new stream
leader after the kill and the nodes that stayed up went as long without a commit (they
waited on the stream, not on themselves), then the paced intake caught up (470 trades/s
acknowledged during the faults at 469 offered); the killed node answered 1.2 s after its
restart and was level with the others 8.1 s after it (4.3-8.4 s).

    .venv/bin/python bench/ledger_cluster.py                 # 1-3 minutes
    .venv/bin/python bench/ledger_cluster.py --faults
    .venv/bin/python bench/ledger_cluster.py --trades 200000 --paced-s 60
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from ledger_commit import run as run_solo  # noqa: E402

from bench.cluster_parts.intake import Batch, Intake, TimedPublisher  # noqa: E402
from bench.cluster_parts.market import Market  # noqa: E402
from bench.cluster_parts.nodes import HeightPoller, NodeFleet, cpu_seconds  # noqa: E402
from market_protocol.signing import public_key_pem  # noqa: E402
from service_base.nats_cluster import BRIDGE_USER, NatsCluster  # noqa: E402
from trace_ledger.stream import StreamPublisher  # noqa: E402
from trace_ledger.stream_ledger import StreamLedger  # noqa: E402

VICTIM = "wholesale_market"
GOAL_TRADES_PER_S, GOAL_P99_MS = 5000, 500


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _latency(batches: list[Batch], poller: HeightPoller) -> dict[str, Any]:
    samples = [(at - b.handed_at) * 1000 for b in batches
               if (at := poller.committed_at(b.last_seq)) is not None]
    if not samples:
        return {"p50_ms": None, "p99_ms": None, "batches": 0}
    return {"p50_ms": round(statistics.median(samples), 1),
            "p99_ms": round(_percentile(samples, 0.99), 1),
            "max_ms": round(max(samples), 1), "batches": len(samples)}


class _Meter:
    """CPU of every process and the nodes' stage timings, between two readings."""

    def __init__(self, cluster: NatsCluster, fleet: NodeFleet) -> None:
        self.cluster, self.fleet = cluster, fleet
        self.nats_dead = 0.0

    def read(self) -> dict[str, Any]:
        return {"bench": time.process_time(), "nodes": self.fleet.cpu(),
                "nats": self.nats_dead + sum(cpu_seconds(self.cluster.pid(i))
                                             for i in range(self.cluster.size)),
                "stages": {org: (self.fleet.get(org, "/healthz") or {}).get("timings")
                           for org in self.fleet.orgs}}

    def kill_server(self, index: int) -> None:
        self.nats_dead += cpu_seconds(self.cluster.pid(index))
        self.cluster.kill(index)

    @staticmethod
    def breakdown(before: dict[str, Any], after: dict[str, Any], trades: int,
                  intake: dict[str, float], publish_ms: float) -> dict[str, Any]:
        def us(seconds: float) -> float:
            return round(seconds / trades * 1e6, 1)

        nodes = {org: us(after["nodes"][org] - before["nodes"][org]) for org in after["nodes"]}
        bench, nats = us(after["bench"] - before["bench"]), us(after["nats"] - before["nats"])
        total = bench + nats + sum(nodes.values())
        stages = {}
        for org, timings in after["stages"].items():
            old = before["stages"].get(org)
            if timings and old:
                stages[org] = {stage: us(value - old["seconds"][stage])
                               for stage, value in timings["seconds"].items()}
        busiest = {stage: statistics.mean(node[stage] for node in stages.values())
                   for stage in next(iter(stages.values()), {}) if stage != "fetch"}
        return {"cpu_us_per_trade": {"bridge_side_this_process": bench, "nodes": nodes,
                                     "nats_servers": nats, "total": round(total, 1)},
                "cpu_share": {"nodes": round(sum(nodes.values()) / total, 2),
                              "bridge_side": round(bench / total, 2),
                              "nats_servers": round(nats / total, 2)} if total else None,
                "node_busiest_stage": max(busiest, key=busiest.get) if busiest else None,
                "cpu_bound_trades_per_s": round(2e6 / total) if total else None,
                "node_stage_wall_us_per_trade": stages,
                "bridge_side_wall_us_per_trade": {
                    "submit": us(intake["submit"]),
                    "encode_and_cut": us(intake["flush"] - publish_ms / 1000),
                    "publish_ack_wait": us(publish_ms / 1000)}}


def _catch_up(poller: HeightPoller, victim: str, restarted: float) -> float | None:
    """Seconds from ``restarted`` until the victim's committed sequence first reached the
    others' (as last sampled before it)."""
    others = [org for org in poller.samples if org != victim]
    for at, seq in poller.samples[victim]:
        if at < restarted:
            continue
        theirs = [max((s for t, s in poller.samples[org] if t <= at), default=0)
                  for org in others]
        if seq >= min(theirs):
            return round(at - restarted, 2)
    return None


def _longest_gap(poller: HeightPoller, since: float) -> float | None:
    """The longest time after ``since`` that a node which stayed up went without
    committing a new message (the intake sends one about every tenth of a second)."""
    gaps = []
    for org, samples in poller.samples.items():
        if org == VICTIM:
            continue
        times = [since] + [at for at, _seq in samples if at > since]
        gaps += [later - earlier for earlier, later in pairwise(times)]
    return round(max(gaps), 2) if gaps else None


def _leader(cluster: NatsCluster) -> int:
    state = cluster.stream_state(0) or {}
    name = (state.get("cluster") or {}).get("leader") or "nats-1"
    return int(name.rsplit("-", 1)[1]) - 1


class _Drill(threading.Thread):
    """The faults of the sustained phase, on a thread of their own by the clock (a flush
    stalled on the stream does not hold them back)."""

    SCHEDULE = ((0.2, "server_killed"), (0.35, "node_killed"), (0.55, "server_restarted"),
                (0.7, "node_restarted"))

    def __init__(self, cluster: NatsCluster, fleet: NodeFleet, meter: _Meter,
                 seconds: float) -> None:
        super().__init__(daemon=True, name="drill")
        self.cluster, self.fleet, self.meter, self.seconds = cluster, fleet, meter, seconds
        self.server = 0
        self.at: dict[str, float] = {}
        self.error: BaseException | None = None

    def run(self) -> None:
        started = time.perf_counter()
        try:
            for share, what in self.SCHEDULE:
                delay = started + share * self.seconds - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                self.at[what] = time.perf_counter()
                getattr(self, what)()
        except BaseException as exc:  # noqa: BLE001 - reported by finish()
            self.error = exc

    def server_killed(self) -> None:
        self.server = _leader(self.cluster)
        self.meter.kill_server(self.server)

    def node_killed(self) -> None:
        self.fleet.kill(VICTIM)

    def server_restarted(self) -> None:
        self.cluster.start_server(self.server, wait=False)

    def node_restarted(self) -> None:
        self.fleet.start(VICTIM)  # returns once its /healthz answers
        self.at["node_answering"] = time.perf_counter()

    def finish(self) -> None:
        self.join()
        if self.error is not None:
            raise RuntimeError(f"the drill failed: {self.error!r}") from self.error


def run(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    key = Ed25519PrivateKey.generate()
    gateway_pem = data_dir / "gateway_public.pem"
    gateway_pem.write_text(public_key_pem(key))
    market = Market(key, data_dir / "market")
    groups = market.entries(args.trades)
    expected = {entry.record_id for group in groups for entry in group}
    gc.freeze()  # the prepared entries are long-lived: keep them out of full collections
    with NatsCluster(data_dir / "nats", size=3) as cluster:
        publisher = StreamPublisher(cluster.servers, user=BRIDGE_USER,
                                    password=cluster.password(BRIDGE_USER), ack_timeout_s=2)
        publisher.ensure_stream(3)
        fleet = NodeFleet(data_dir / "nodes", cluster, gateway_pem)
        timed = TimedPublisher(publisher)
        ledger = StreamLedger(timed, None, journal_path=data_dir / "journal.json",
                              batch_max=args.block_max, retry_initial_s=0.05, retry_max_s=0.5)
        intake = Intake(ledger, timed)
        poller = None
        try:
            fleet.start_all()
            poller = HeightPoller(fleet).start()
            meter = _Meter(cluster, fleet)
            # -- throughput ---------------------------------------------------------------
            before = meter.read()
            batches = intake.run(groups, args.batch)
            fleet.wait_seq(batches[-1].last_seq)
            committed = poller.committed_at(batches[-1].last_seq) or time.perf_counter()
            seconds = committed - batches[0].handed_at
            publish_s = batches[-1].acked_at - batches[0].handed_at
            after = meter.read()
            rate = args.trades / seconds
            where = meter.breakdown(before, after, args.trades, intake.seconds,
                                    sum(timed.latencies_ms))
            saturated = _latency(batches, poller)
            publish_ack = timed.latencies_ms[:]
            # -- sustained ----------------------------------------------------------------
            paced_rate = args.rate or min(GOAL_TRADES_PER_S, 0.5 * rate)
            paced = market.entries(max(1, int(paced_rate * args.paced_s)))
            expected |= {entry.record_id for group in paced for entry in group}
            drill = None
            if args.faults:
                drill = _Drill(cluster, fleet, meter, len(paced) / paced_rate)
                drill.start()
            paced_batches = intake.run(paced, args.paced_batch, paced_rate)
            if drill is not None:
                drill.finish()
            fleet.wait_seq(paced_batches[-1].last_seq)
            time.sleep(0.1)  # one more poll of every node
            sustained = _latency(paced_batches, poller)
            paced_seconds = paced_batches[-1].acked_at - paced_batches[0].handed_at
            roots_identical, heads = fleet.roots_identical()
        finally:
            if poller is not None:
                poller.stop()
            ledger.close()
            fleet.stop()
            publisher.close()
            market.close()
        counted = fleet.count(expected)
    solo = run_solo(args.trades, 2000, 2000, data_dir / "solo",
                    entries=[entry for group in groups for entry in group])
    result: dict[str, Any] = {
        "bench": "ledger_cluster", "trades": args.trades, "paced_trades": len(paced),
        "entries": len(expected), "servers": 3, "replicas": 3, "node_processes": 3,
        "batch_trades": args.batch, "block_max_entries": args.block_max,
        "trades_per_s": round(rate), "goal_trades_per_s": GOAL_TRADES_PER_S,
        "goal_met": round(rate) >= GOAL_TRADES_PER_S,
        "seconds": round(seconds, 3),
        "publish_trades_per_s": round(args.trades / publish_s),
        "publish_ack_ms": {"p50": round(statistics.median(publish_ack), 2),
                           "p99": round(_percentile(publish_ack, 0.99), 2)},
        "saturated_commit_latency_ms": saturated,
        "lost": counted["lost"], "duplicated": counted["duplicated"],
        "refused": counted["refused"], "roots_identical": roots_identical,
        "p50_ms": sustained["p50_ms"], "p99_ms": sustained["p99_ms"],
        "goal_p99_ms": GOAL_P99_MS,
        "sustained": {"offered_trades_per_s": round(paced_rate),
                      "achieved_trades_per_s": round(len(paced) / paced_seconds),
                      "batch_trades": args.paced_batch, **sustained},
        "baseline": "bench/ledger_commit.py (solo, in process, same entries)",
        "baseline_trades_per_s": solo["trades_per_s"],
        "ratio_vs_solo": round(round(rate) / solo["trades_per_s"], 2),
        "where_the_time_goes": where, "per_node": counted["per_node"], "heads": heads,
        "publish_retries": ledger.failed_attempts,
        "load_avg_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}
    if drill is not None:
        at = drill.at
        def acked_by(moment: float) -> int:
            return max((b.trades for b in batches + paced_batches if b.acked_at <= moment),
                       default=0)
        result["trades_per_s_during_faults"] = round(
            (acked_by(at["node_restarted"]) - acked_by(at["server_killed"]))
            / (at["node_restarted"] - at["server_killed"]))
        result["catch_up_s"] = _catch_up(poller, VICTIM, at["node_restarted"])
        result["node_start_up_s"] = round(at["node_answering"] - at["node_restarted"], 2)
        result["bridge_longest_flush_s"] = round(max(b.acked_at - b.handed_at
                                                     for b in paced_batches), 2)
        result["nodes_longest_gap_s"] = _longest_gap(poller, at["server_killed"])
        result["faults"] = {"nats_server_killed": f"nats-{drill.server + 1}",
                            "node_killed": VICTIM,
                            "times_s": {k: round(v - paced_batches[0].handed_at, 2)
                                        for k, v in at.items()}}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=20_000, help="throughput phase")
    parser.add_argument("--batch", type=int, default=500, help="trades per writer batch")
    parser.add_argument("--block-max", type=int, default=500, help="entries per message")
    parser.add_argument("--paced-s", type=float,
                        help="seconds of the sustained phase (default 10, 20 with --faults)")
    parser.add_argument("--paced-batch", type=int, default=50,
                        help="trades per writer batch in the sustained phase")
    parser.add_argument("--rate", type=float, help="offered trades/s in the sustained phase")
    parser.add_argument("--faults", action="store_true",
                        help="kill -9 a nats-server and a node mid-run, restart both")
    parser.add_argument("--data-dir", type=Path, help="default: a temporary directory")
    args = parser.parse_args(argv)
    if args.paced_s is None:
        args.paced_s = 20.0 if args.faults else 10.0
    if args.data_dir:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        result = run(args, args.data_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="ledger-cluster-") as tmp:
            result = run(args, Path(tmp))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
