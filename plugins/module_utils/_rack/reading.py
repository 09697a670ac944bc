# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read everything that exists of one rack (about 30 calls, in parallel): each part reads its
own resources into one RackState; then one of each duplicated thing is kept. The same reading
serves install, update, uninstall, status and the apps."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from . import holder
from .naming import RackNames
from .parts import cluster, compute, duplicates, entry, firewall, flowlogs, identity, kms, logs, nat, network, storage
from .record import RUN_STATUSES
from .state import RackState

READERS = (network.read, nat.read, firewall.read, identity.read, compute.read, cluster.read, entry.read, logs.read_rack,
           kms.read, flowlogs.read)
SERVICES = ("s3", "ec2", "iam", "autoscaling", "ecs", "elbv2", "logs", "kms")  # ssm: made when needed (SessionClients locks)


def read_rack(aws, rack, region, identity):
    """Everything that exists of the rack, in one RackState."""
    state = RackState(RackNames(rack, region, identity.account))

    def bucket():
        state.bucket = storage.read_tags(aws, state.names.bucket)
        if state.recorded_status in RUN_STATUSES:
            # Is that run still working? Only while it holds the run lock (one call, only then).
            state.lock = holder.read_one(aws, rack)

    def log_bucket():
        state.log_bucket = storage.read_log_bucket(aws, state.names)
    in_parallel(aws, [bucket, log_bucket] + [lambda read=read: read(aws, state) for read in READERS])
    duplicates.resolve(state)
    return state


def in_parallel(aws, readers, workers=8):
    """Run independent reads concurrently (AWS latency, not CPU, is what a read costs).

    boto3 clients are thread-safe once made, so they are all made first, in this thread.
    The first failure is raised, as a sequential run would."""
    for service in SERVICES:
        aws.client(service)
    with ThreadPoolExecutor(max_workers=min(workers, len(readers))) as pool:
        futures = [pool.submit(reader) for reader in readers]
        for future in futures:
            future.result()
