# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Flow logs: one flow log of the rack's VPC, every packet accepted and rejected (traffic ALL),
delivered to the rack's log bucket under logs/flow/ (the bucket's policy lets the log delivery service
write there: delivery.flow_logs_statements). On unless flow_logs is false; turning it off deletes it.
A flow log's destination cannot be changed (EC2 API reference: no ModifyFlowLogs; CreateFlowLogs
and DeleteFlowLogs only): one with another destination (the rack's bucket, before the log bucket
took every delivery) is replaced, deleted then created.
Found by the rack's tags (DescribeFlowLogs' tag filters), confirmed by them."""

from __future__ import annotations

from .. import delivery as L
from ..errors import RackError
from ..plan import CHECK_MODE_ID
from ..tags import ec2_filters, ec2_tag_spec, ours_only, sync_ec2_tags, tag_dict

NOT_FOUND = ("InvalidFlowLogId.NotFound",)
# A VPC just made may not be visible yet (EC2's eventual consistency).
NEW_VPC = ("InvalidVpcID.NotFound",)


def read(aws, state):
    rack = state.names.rack
    state.flow_logs = ours_only(aws.call("ec2", "describe_flow_logs", "flow logs of rack %s" % rack,
                                         Filters=ec2_filters(rack))["FlowLogs"], rack)


def _of_every_packet_to_s3(flow_log, vpc_id):
    return (flow_log.get("ResourceId") == vpc_id and flow_log.get("LogDestinationType") == "s3"
            and flow_log.get("TrafficType") == "ALL")


def _is_wanted(flow_log, vpc_id, destination):
    return _of_every_packet_to_s3(flow_log, vpc_id) and flow_log.get("LogDestination") == destination


def ensure(run, vpc_id):
    """The VPC's flow log (or none with flow_logs: false); sets run.out["flow_log_id"]."""
    on = run.wanted.get("flow_logs", True)
    destination = L.flow_logs_destination(run.identity.partition, run.names.log_bucket)
    current = run.state.flow_logs or []
    keep = [f for f in current if _is_wanted(f, vpc_id, destination)][:1] if on else []
    moved = None  # the rack's flow log of this VPC, delivered elsewhere: replaced
    for flow_log in current:
        if flow_log in keep:
            continue
        if on and not keep and moved is None and _moves(flow_log, vpc_id, destination):
            moved = flow_log
            continue
        _delete(run, flow_log["FlowLogId"], "not the rack's flow log" if on else "flow_logs: false")
    if moved is not None:
        return _replace(run, vpc_id, moved, destination)
    if keep:
        fid = keep[0]["FlowLogId"]
        sync_ec2_tags(run.aws, run.plan, "flow_log", fid, tag_dict(keep[0].get("Tags")), run.res_tags(run.names.base))
        run.out["flow_log_id"] = fid
        return fid
    if not on:
        run.out["flow_log_id"] = None
        return None
    fid = run.plan.change("flow_log", run.names.base, "create", lambda: _create(run, vpc_id, destination),
                          detail={"destination": destination, "traffic": "ALL"}) or CHECK_MODE_ID
    run.out["flow_log_id"] = fid
    return fid


def _moves(flow_log, vpc_id, destination):
    """The VPC's flow log of every packet into S3, elsewhere than `destination`."""
    return _of_every_packet_to_s3(flow_log, vpc_id) and flow_log.get("LogDestination") != destination


def _replace(run, vpc_id, flow_log, destination):
    """Delete the flow log, then create it with the new destination (one change of the plan)."""
    fid = flow_log["FlowLogId"]

    def replace():
        run.aws.call("ec2", "delete_flow_logs", "flow log %s" % fid, ignore=NOT_FOUND, FlowLogIds=[fid])
        return _create(run, vpc_id, destination)
    new = run.plan.change("flow_log", fid, "replace", replace, detail={
        "reason": "delivered to %s, not to the log bucket (a destination cannot change)" % flow_log.get("LogDestination"),
        "destination": {"before": flow_log.get("LogDestination"), "after": destination}}) or CHECK_MODE_ID
    run.out["flow_log_id"] = new
    return new


def _create(run, vpc_id, destination):
    created = run.aws.call("ec2", "create_flow_logs", "flow log of VPC %s" % vpc_id, retry_on=NEW_VPC,
                           ResourceType="VPC", ResourceIds=[vpc_id], TrafficType="ALL", LogDestinationType="s3",
                           LogDestination=destination, ClientToken=run.token("flow-log"),
                           TagSpecifications=ec2_tag_spec("vpc-flow-log", run.res_tags(run.names.base)))
    failed = created.get("Unsuccessful") or []
    if failed:
        error = failed[0].get("Error") or {}
        raise RackError("flow log of VPC %s: %s %s" % (vpc_id, error.get("Code"), error.get("Message")),
                        resource="flow log of VPC %s" % vpc_id, error_code=error.get("Code"))
    return created["FlowLogIds"][0]


def _delete(run, fid, reason):
    run.plan.change("flow_log", fid, "delete", lambda: run.aws.call(
        "ec2", "delete_flow_logs", "flow log %s" % fid, ignore=NOT_FOUND, FlowLogIds=[fid]), detail={"reason": reason})


def remove(run):
    """Every flow log of the rack (before its VPC: AWS deletes a VPC's flow logs with it, but the
    rack's are found by their tags and deleted as its own)."""
    for flow_log in run.state.flow_logs or []:
        fid = flow_log["FlowLogId"]
        run.plan.change("flow_log", fid, "delete", lambda fid=fid: run.aws.call(
            "ec2", "delete_flow_logs", "flow log %s" % fid, ignore=NOT_FOUND, FlowLogIds=[fid]))
