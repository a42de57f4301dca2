"""The global IAM role's inline policies, region by region: whose each is, and what a region's destroy removes.

IAM is global, so one role serves a stage in every region; each region's policies carry the
region in their name (:meth:`~lamed.aws.resources.Names.policy`). A region's destroy removes only
its own policies, and the role with them once no other region has any. All of them share IAM's
quota on a role's inline policies (:func:`check_role_size`), checked before a region's are written.
"""

import json

from lamed.aws.client import Aws, read
from lamed.aws.resources import LOGS_POLICY_NAME, VPC_POLICY_NAME, Names
from lamed.aws.steps import Step


# IAM's "Role policy size": a role's inline policies together, white space not counted
# (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html, "IAM and STS character quotas")
ROLE_POLICY_QUOTA = 10_240


class RoleTooLarge(Exception):
    """Writing this region's policies would take the role's inline policies over IAM's quota."""


def policy_size(document: dict) -> int:
    """A policy document's size as IAM counts it against the quota: its characters but white space."""
    return sum(not char.isspace() for char in json.dumps(document))


def check_role_size(aws: Aws, names: Names, inline: list[str], policies: dict[str, dict]) -> None:
    """Raise :class:`RoleTooLarge` unless the role's inline policies fit IAM's quota once this region's
    ``policies`` (by kind) are written: every policy on it now (``inline``) but those they replace, plus them."""
    written = {names.policy(kind) for kind in policies}
    kept = [current_policy(aws, names.app, name) for name in inline if name not in written]
    size = sum(policy_size(document or {}) for document in [*kept, *policies.values()])
    if size > ROLE_POLICY_QUOTA:
        raise RoleTooLarge(
            f"role {names.app}'s inline policies would be {size} characters with {names.region}'s, over IAM's "
            f"quota of {ROLE_POLICY_QUOTA} (white space not counted) — fix: deploy {names.region} under a stage "
            "of its own (--stage NAME has its own role), or destroy a region this stage no longer uses"
        )


def policy_regions(aws: Aws, names: Names, inline: list[str]) -> dict[str, str]:
    """The region of each of lamed's inline policies on the role. Policies named as before regions
    (``lamed-logs``…, written together by one deploy) are the region's that their logs policy names."""
    regions = {name: region for name in inline if (region := names.policy_region(name))}
    legacy = [name for name in inline if names.legacy_policy(name)]
    if legacy:
        logs = current_policy(aws, names.app, LOGS_POLICY_NAME) if LOGS_POLICY_NAME in legacy else None
        regions |= dict.fromkeys(legacy, _arn_region(logs) or names.region)
    return regions


def _arn_region(policy: dict | None) -> str | None:
    """The region of the first regional ARN a policy document names, or None."""
    for statement in (policy or {}).get("Statement", []):
        resources = statement.get("Resource", [])
        for arn in [resources] if isinstance(resources, str) else resources:
            parts = arn.split(":")
            if len(parts) > 5 and parts[3]:
                return parts[3]
    return None


def current_policy(aws: Aws, role: str, name: str) -> dict | None:
    current = read(aws.iam.get_role_policy, RoleName=role, PolicyName=name)
    return current and current["PolicyDocument"]


def role_permissions(aws: Aws, role: str) -> tuple[list[str], list[str]]:
    """The role's inline policy names and the ARNs of the managed policies attached to it."""
    pages = aws.iam.get_paginator("list_role_policies").paginate(RoleName=role)
    inline = [name for page in pages for name in page["PolicyNames"]]
    pages = aws.iam.get_paginator("list_attached_role_policies").paginate(RoleName=role)
    attached = [policy["PolicyArn"] for page in pages for policy in page["AttachedPolicies"]]
    return inline, attached


def remove_permissions(aws: Aws, role: str, inline: list[str], attached: list[str]) -> None:
    for name in inline:
        aws.iam.delete_role_policy(RoleName=role, PolicyName=name)
    for arn in attached:
        aws.iam.detach_role_policy(RoleName=role, PolicyArn=arn)


def role_destroy_step(aws: Aws, names: Names, functions: list[str]) -> Step:
    """This region's policies go; the role goes with them unless another region's policies are still on it."""
    subject, region = f"role {names.app}", names.region
    inline, _ = role_permissions(aws, names.app)
    regions = policy_regions(aws, names, inline)
    mine = [name for name in inline if regions.get(name) == region]
    elsewhere = sorted(set(regions.values()) - {region})
    if not elsewhere:
        return Step("delete", subject, "", lambda aws: _delete_role(aws, names, functions))
    kept = f"kept: used in {', '.join(elsewhere)}"
    if not mine:
        return Step("unchanged", subject, kept)

    def remove(aws):
        _release_network_interfaces(aws, names, mine, functions)
        remove_permissions(aws, names.app, mine, [])

    return Step("update", subject, f"removed {', '.join(mine)}; {kept}", remove)


def _delete_role(aws: Aws, names: Names, functions: list[str]) -> None:
    inline, attached = role_permissions(aws, names.app)
    _release_network_interfaces(aws, names, inline, functions)
    remove_permissions(aws, names.app, inline, attached)
    aws.iam.delete_role(RoleName=names.app)


def _release_network_interfaces(aws: Aws, names: Names, policies: list[str], functions: list[str]) -> None:
    """Before this region's VPC policy goes: Lambda deletes the functions' network interfaces with its rights."""
    if {names.policy(VPC_POLICY_NAME), VPC_POLICY_NAME} & set(policies):  # as named now, or before regions
        aws.wait_network_interfaces(functions)
