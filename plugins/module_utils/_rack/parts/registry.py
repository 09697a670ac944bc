# -*- coding: utf-8 -*-
# Copyright: (c) 2026, convox.rack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Registry: an app's ECR repository convox/<rack>/<app> (scan on push, tags mutable unless
immutable_tags). Found by name, confirmed by the app's tags. A repository holding images is
kept and named unless purge_data."""

from __future__ import annotations

from ..errors import AWSCallError
from ..tags import confirm, sync_tags, tag_dict, tag_list

NOT_FOUND = ("RepositoryNotFoundException",)


def read(aws, state):
    names = state.names
    what = "ECR repository %s" % names.repository
    found = aws.call("ecr", "describe_repositories", what, ignore=NOT_FOUND, repositoryNames=[names.repository])
    repo = next((r for r in (found or {}).get("repositories", []) if r.get("repositoryName") == names.repository), None)
    if repo is None:
        return
    tags = tag_dict(aws.call("ecr", "list_tags_for_resource", what, resourceArn=repo["repositoryArn"]).get("tags"))
    confirm(tags, what, names.rack, "app", names.app)
    state.repository, state.repository_tags = repo, tags


def ensure(run, immutable_tags):
    """Create or converge the repository; returns its URI (None in check mode before it exists)."""
    name, repo, plan = run.names.repository, run.state.repository, run.plan
    mutability = "IMMUTABLE" if immutable_tags else "MUTABLE"

    def ecr(op, **kw):
        return run.aws.call("ecr", op, "ECR repository %s" % name, **kw)
    if repo is None:
        created = plan.change("repository", name, "create", lambda: ecr(
            "create_repository", repositoryName=name, tags=tag_list(run.tags), imageTagMutability=mutability,
            imageScanningConfiguration={"scanOnPush": True}, encryptionConfiguration={"encryptionType": "AES256"}))
        return (created or {}).get("repository", {}).get("repositoryUri")
    if not (repo.get("imageScanningConfiguration") or {}).get("scanOnPush"):
        plan.change("repository", name, "update", lambda: ecr(
            "put_image_scanning_configuration", repositoryName=name, imageScanningConfiguration={"scanOnPush": True}),
            detail={"scan_on_push": True})
    if repo.get("imageTagMutability", "MUTABLE") != mutability:
        plan.change("repository", name, "update", lambda: ecr(
            "put_image_tag_mutability", repositoryName=name, imageTagMutability=mutability),
            detail={"image_tag_mutability": {"before": repo.get("imageTagMutability"), "after": mutability}})
    arn = repo["repositoryArn"]
    sync_tags(plan, "repository", name, run.state.repository_tags, run.tags,
              lambda s: ecr("tag_resource", resourceArn=arn, tags=tag_list(s)),
              lambda u: ecr("untag_resource", resourceArn=arn, tagKeys=u))
    return repo.get("repositoryUri")


def remove(run, purge_data, kept):
    """Delete the repository; one holding images is kept (named in `kept`) unless purge_data."""
    if run.state.repository is None:
        return
    name = run.names.repository
    images = run.aws.call("ecr", "list_images", "ECR repository %s" % name, ignore=NOT_FOUND,
                          repositoryName=name, maxResults=1)
    if images is None:
        return
    holds_data = bool(images.get("imageIds"))
    if holds_data and not purge_data:
        kept.append(name)
        return

    def delete():
        try:
            run.aws.call("ecr", "delete_repository", "ECR repository %s" % name, ignore=NOT_FOUND,
                         repositoryName=name, force=holds_data)
        except AWSCallError as e:
            if e.code != "RepositoryNotEmptyException" or purge_data:
                raise
            kept.append(name)  # an image pushed since it was read
    run.plan.change("repository", name, "delete", delete, detail={"purge_data": True} if holds_data else None)
