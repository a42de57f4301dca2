"""The catalogue: every AWS behaviour the tests' stricter AWS adds to moto, with its source.

tests/aws_faults.py (the fault layer, :class:`LikeAws`) and tests/iam_policy.py model AWS where
moto is kinder or silent; each behaviour they add is one entry here, named where the code
models it (``behaviour: NAME`` comments, or the layer's event kinds), with the AWS
documentation page, botocore model, or issue thread with real-AWS evidence it follows, so a
reader can check the model against AWS. tests/test_aws_behaviours.py keeps this list and the
code in step.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Behaviour:
    what: str
    source: str


CATALOGUE = {
    # -- Lambda --------------------------------------------------------------------------------
    "pending": Behaviour(
        "A new function is Pending, an updated one InProgress, for seconds; reads show it and a change "
        "meanwhile is refused with ResourceConflictException",
        "https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html",
    ),
    "conflict": Behaviour(
        "A change to a function that another update is changing: ResourceConflictException "
        "(\"The operation cannot be performed at this time. An update is in progress for resource: ...\")",
        "https://docs.aws.amazon.com/lambda/latest/api/API_UpdateFunctionConfiguration.html (ResourceConflictException)",
    ),
    "failed state": Behaviour(
        "A function whose creation failed is in State Failed with a StateReason until it is recreated",
        "https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html",
    ),
    "failed update": Behaviour(
        "An update that fails ends LastUpdateStatus Failed with LastUpdateStatusReason; the function still serves",
        "https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html (LastUpdateStatus)",
    ),
    "version pending": Behaviour(
        "A published version is Pending before it is Active",
        "botocore's Lambda waiter PublishedVersionActive (botocore/data/lambda/2015-03-31/waiters-2.json)",
    ),
    "propagating": Behaviour(
        "For seconds after a role is created or given a policy, Lambda cannot use it: CreateFunction / "
        "UpdateFunctionConfiguration fail \"cannot be assumed by Lambda\" (with a VPC: \"does not have "
        "permissions to call CreateNetworkInterface on EC2\")",
        "https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency",
    ),
    "duplicate statement": Behaviour(
        "AddPermission with a statement id the policy has: ResourceConflictException \"The statement id (...) "
        "provided already exists\"",
        "https://docs.aws.amazon.com/lambda/latest/api/API_AddPermission.html (ResourceConflictException)",
    ),
    "policy conditions": Behaviour(
        "GetPolicy shows AddPermission's FunctionUrlAuthType and InvokedViaFunctionUrl as Conditions "
        "(moto keeps them as raw keys), and moto's ignored Qualifier is recorded",
        "https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html",
    ),
    "cors methods": Behaviour(
        "A function URL's Cors.AllowMethods entries are at most 6 characters (botocore checks no maximum)",
        "https://docs.aws.amazon.com/lambda/latest/api/API_Cors.html",
    ),
    "no function urls": Behaviour(
        "In the regions without function URLs (ap-south-2, ap-southeast-4/5/6/7, ap-east-2, ca-west-1, "
        "eu-south-2, eu-central-2, il-central-1, me-central-1) every function-URL operation, reads included, "
        "is refused: AccessDeniedException \"Unable to determine service/operation name to be authorized\"",
        "https://docs.aws.amazon.com/lambda/latest/dg/urls-configuration.html (\"Function URLs are not supported "
        "in the following AWS Regions\"); zappa/Zappa#1425 (ListFunctionUrlConfigs in eu-south-2); "
        "anomalyco/sst#5327 (eu-central-2, ap-southeast-4)",
    ),
    "account concurrency": Behaviour(
        "GetAccountSettings gives the account's concurrency limit and what is unreserved; PutFunctionConcurrency "
        "must leave min(100, limit) unreserved (\"... below its minimum value of [10]\" at a limit of 10)",
        "https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html; "
        "aws-samples/one-observability-demo#278; milliHQ/terraform-aws-next-js#251",
    ),
    # -- API Gateway ---------------------------------------------------------------------------
    "throttled": Behaviour(
        "The control plane's rates: CreateDeployment once per 5 s, UpdateUsagePlan once per 20 s, CreateRestApi "
        "once per 3 s, DeleteRestApi once per 30 s, about 10 requests/s (burst 40) in all; above: 429 "
        "TooManyRequestsException",
        "https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html",
    ),
    "concurrent modification": Behaviour(
        "A change meets ConflictException \"Unable to complete operation due to concurrent modification. "
        "Please try again later.\"",
        "hashicorp/terraform-provider-aws#776 and #16439",
    ),
    "tags": Behaviour(
        "TagResource on a REST API, usage plan or API key keeps its tags, shown by GetRestApis, GetUsagePlans, "
        "GetApiKeys (moto tags only stages)",
        "https://docs.aws.amazon.com/apigateway/latest/api/API_TagResource.html",
    ),
    # -- IAM -----------------------------------------------------------------------------------
    "role policy size": Behaviour(
        "A role's inline policies together are at most 10,240 characters, white space not counted; a "
        "PutRolePolicy beyond: LimitExceeded (409) \"Maximum policy size of 10240 bytes exceeded for role ...\"",
        "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html (\"Role policy size\"); "
        "https://repost.aws/knowledge-center/iam-increase-policy-size; botocore's IAM model (LimitExceededException)",
    ),
    # -- any service ---------------------------------------------------------------------------
    "lost": Behaviour(
        "A request AWS acts on whose answer never arrives (a dropped connection): a retry creates again, and "
        "API Gateway allows duplicate names",
        "https://aws.amazon.com/builders-library/making-retries-safe-with-idempotent-APIs/; "
        "https://docs.aws.amazon.com/apigateway/latest/api/API_CreateRestApi.html",
    ),
    "access denied": Behaviour(
        "Every call is authorised against the caller's IAM policy (actions, resource ARNs, wildcards, "
        "iam:PassRole, tag-on-create); a refusal is AccessDenied(Exception)",
        "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html "
        "(the rest in tests/iam_policy.py's docstring)",
    ),
    "tags need list tags": Behaviour(
        "GetFunction returns Tags only where lambda:ListTags is allowed",
        "botocore's Lambda model, GetFunctionResponse.Tags; "
        "https://docs.aws.amazon.com/lambda/latest/dg/configuration-tags.html#fxn-tags-required-permissions",
    ),
}
