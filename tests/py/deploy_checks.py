"""Checks of the deployment files against botocore's service models and against the code.

Usage: deploy_checks.py REPO_ROOT

1. deploy/ecs-task.json is valid input of ECS RegisterTaskDefinition (botocore's own parameter
   validator on the operation's input shape), with the properties the daemon relies on, and its
   environment names are the stack's and name real settings (config/default.toml).
2. Every IAM action allowed in deploy/stack.yaml exists in botocore's service models (or is one
   of the few IAM-only actions below, each tied to the API call that needs it); none is a wildcard.
3. The daemon's task role allows exactly the calls the code of `personalize-ops run` makes, which
   are derived from src/: every `.operation()` builder call of an SDK client that is sent.

Prints one line per failed check and a closing "N passed, N failed" line; exits 1 on any failure.
"""
import json
import pathlib
import re
import sys

import botocore.session
import yaml
from botocore.validate import ParamValidator

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
SESSION = botocore.session.get_session()

# SDK crate (aws_sdk_<crate>) -> (botocore service model, IAM prefix).
CRATES = {
    "personalize": ("personalize", "personalize"),
    "s3": ("s3", "s3"),
    "sqs": ("sqs", "sqs"),
    "dynamodb": ("dynamodb", "dynamodb"),
    "sns": ("sns", "sns"),
    "cloudwatch": ("cloudwatch", "cloudwatch"),
    "eventbridge": ("events", "events"),
}
# IAM prefixes of the other roles' actions -> botocore service model.
OTHER_PREFIXES = {"ecr": "ecr", "logs": "logs", "sts": "sts", "iam": "iam", "kms": "kms"}

# API calls authorised by an IAM action of another name, or by more than one action.
IAM_FOR_CALL = {
    ("s3", "HeadObject"): ["s3:GetObject"],
    ("s3", "ListObjectsV2"): ["s3:ListBucket"],
    # Create calls that name a role Personalize assumes: the caller must be allowed to pass it.
    ("personalize", "CreateDatasetImportJob"): ["personalize:CreateDatasetImportJob", "iam:PassRole"],
    ("personalize", "CreateBatchInferenceJob"): ["personalize:CreateBatchInferenceJob", "iam:PassRole"],
    ("personalize", "CreateBatchSegmentJob"): ["personalize:CreateBatchSegmentJob", "iam:PassRole"],
    # With a KMS key (personalize.kms_role_arn), the group names the role that may use it.
    ("personalize", "CreateDatasetGroup"): ["personalize:CreateDatasetGroup", "iam:PassRole"],
}
# TransactWriteItems is authorised per item: the item kinds the code builds decide the actions.
TRANSACT_ITEM_ACTIONS = {
    "condition_check": "dynamodb:ConditionCheckItem",
    "put": "dynamodb:PutItem",
    "update": "dynamodb:UpdateItem",
    "delete": "dynamodb:DeleteItem",
}
# IAM actions that are no API operation, with the calls that need them.
IAM_ONLY = {
    "s3:ListBucket": "ListObjectsV2 (and the bucket policy's Personalize statements)",
    "dynamodb:ConditionCheckItem": "the ConditionCheck items of TransactWriteItems",
    "iam:PassRole": "CreateDatasetGroup and Create*Job calls that name a Personalize role",
}
# Actions without a resource type: only these may have Resource "*".
UNSCOPABLE = {"cloudwatch:PutMetricData", "ecr:GetAuthorizationToken"}

# Code that `personalize-ops run` never executes: the built-in Personalize, the other commands
# (operators run them with their own credentials), and functions only those commands call.
# The exporter serves the operator's `schedules import-dataset-group` (operator credentials), never
# the daemon, so its calls (ListTagsForResource) are not the task role's.
NOT_IN_THE_DAEMON = ["src/emulator/", "src/reconcile/export.rs"]
DAEMON_CLI = {"src/cli/mod.rs", "src/cli/run.rs", "src/cli/healthcheck.rs"}
OPERATOR_FUNCTIONS = {
    "src/store/dynamo.rs": ["create_table", "enable_ttl"],
    # ObjectStore::put serves the built-in Personalize's batch output and tests; Personalize
    # writes real batch output with its own role.
    "src/objects/s3.rs": ["put"],
}

failures = []
passed = 0


def check(ok, message):
    global passed
    if ok:
        passed += 1
    else:
        failures.append(message)


def snake(name):
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def operations(model):
    return SESSION.get_service_model(model).operation_names


# ------------------------------------------------------------------ the code's calls
def without_tests(text):
    """The file without its `#[cfg(test)]` module (tests call what they like)."""
    cut = re.search(r"^#\[cfg\(test\)\]\s*\nmod tests", text, re.M)
    return text[: cut.start()] if cut else text


def without_functions(text, names):
    """The file without the bodies of the named `fn`s (methods are indented by four spaces)."""
    chunks = re.split(r"(?m)^(?=    (?:pub(?:\(crate\))? )?(?:async )?fn |(?:pub(?:\(crate\))? )?(?:async )?fn )", text)
    keep = []
    for chunk in chunks:
        m = re.match(r"\s*(?:pub(?:\(crate\))? )?(?:async )?fn (\w+)", chunk)
        if m and m.group(1) in names:
            continue
        keep.append(chunk)
    return "".join(keep)


def daemon_sources():
    for path in sorted((ROOT / "src").rglob("*.rs")):
        rel = path.relative_to(ROOT).as_posix()
        if any(rel.startswith(p) for p in NOT_IN_THE_DAEMON):
            continue
        if rel.startswith("src/cli/") and rel not in DAEMON_CLI:
            continue
        text = without_tests(path.read_text(encoding="utf-8"))
        text = without_functions(text, OPERATOR_FUNCTIONS.get(rel, []))
        yield rel, text


def code_calls():
    """{(crate, Operation)} the daemon's code sends, and the IAM actions of its transactions."""
    ops = {crate: {snake(o): o for o in operations(model)} for crate, (model, _) in CRATES.items()}
    calls = set()
    transact = set()
    for rel, text in daemon_sources():
        # The reconciler's client is reached as `api.client`, without naming the crate.
        used = {c for c in CRATES if f"aws_sdk_{c}" in text}
        if rel.startswith("src/reconcile/") or "api.client" in text:
            used.add("personalize")
        if not used:
            continue
        for statement in text.split(";"):
            # A request sent where it is built, or bound to a name that is sent later.
            bound = re.search(r"let (?:mut )?(\w+) =", statement)
            sent_later = bound is not None and re.search(rf"\b{bound.group(1)}\s*\.send\(\)", text)
            if ".send()" not in statement and not sent_later:
                continue
            # Builder calls `.op()`, and macro arguments `op,` whose operation is named in a string
            # literal of the same file (the reconciler spells paged listings once in a macro).
            names = set(re.findall(r"\.([a-z][a-z0-9_]*)\(\)", statement))
            for name in names:
                for crate in used:
                    if name in ops[crate]:
                        calls.add((crate, ops[crate][name]))
        for literal, ident in re.findall(r'"([A-Z][A-Za-z0-9]+)",\s*([a-z][a-z0-9_]*),', text):
            for crate in used:
                if ops[crate].get(ident) == literal:
                    calls.add((crate, literal))
        for kind in re.findall(r"TransactWriteItem::builder\(\)\s*\.(\w+)\(", text):
            transact.add(TRANSACT_ITEM_ACTIONS[kind])
    return calls, transact


def operator_functions_stay_out_of_the_daemon():
    for rel, text in daemon_sources():
        for owner, names in OPERATOR_FUNCTIONS.items():
            if owner == "src/objects/s3.rs":
                continue  # `.put(` is everywhere (maps, builders); documented above instead.
            for name in names:
                check(
                    not re.search(rf"\b{name}\(", text),
                    f"{rel} calls {name}(), which the task role does not allow (it is for operators)",
                )


def expected_task_actions():
    calls, transact = code_calls()
    actions = set()
    for crate, op in calls:
        prefix = CRATES[crate][1]
        if (crate, op) == ("dynamodb", "TransactWriteItems"):
            actions |= transact
            continue
        actions.update(IAM_FOR_CALL.get((crate, op), [f"{prefix}:{op}"]))
    return calls, actions


# ------------------------------------------------------------------ the stack
def statements(document):
    out = document.get("Statement", [])
    return out if isinstance(out, list) else [out]


def as_list(value):
    return value if isinstance(value, list) else [value]


def policy_documents(template):
    """(where, document) of every IAM policy in the stack."""
    for lid, res in template["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::IAM::Role":
            yield f"{lid} trust", props["AssumeRolePolicyDocument"]
            for p in props.get("Policies", []):
                yield f"{lid} {p['PolicyName']}", p["PolicyDocument"]
        elif "PolicyDocument" in props:
            yield lid, props["PolicyDocument"]


def allowed(statement_list):
    for st in statement_list:
        if isinstance(st, dict) and "Fn::If" in st:
            # A conditional statement: check the statement it adds when the condition holds.
            st = st["Fn::If"][1]
        if isinstance(st, dict) and st.get("Effect") == "Allow":
            yield st


def known_action(action):
    prefix, _, name = action.partition(":")
    if action in IAM_ONLY:
        return True
    model = {p: m for _, (m, p) in CRATES.items()} | OTHER_PREFIXES
    return prefix in model and name in operations(model[prefix])


def check_stack(template):
    for where, doc in policy_documents(template):
        for st in allowed(statements(doc)):
            for action in as_list(st["Action"]):
                check("*" not in action, f"{where}: wildcard action {action}")
                check(known_action(action), f"{where}: {action} is no operation in botocore's models")
                if "Principal" not in st:
                    resources = as_list(st.get("Resource", []))
                    check(
                        "*" not in resources or action in UNSCOPABLE,
                        f"{where}: {action} on Resource '*' although it can be scoped",
                    )
    # A service principal acts for any account unless the statement names ours (confused deputy).
    for where, doc in policy_documents(template):
        for st in allowed(statements(doc)):
            principal = st.get("Principal")
            if isinstance(principal, dict) and "Service" in principal:
                conditions = {k for c in st.get("Condition", {}).values() for k in c}
                check(
                    "aws:SourceAccount" in conditions,
                    f"{where}: {principal['Service']} is allowed without an aws:SourceAccount condition",
                )
    task = template["Resources"]["TaskRole"]["Properties"]["Policies"]
    granted = set()
    for p in task:
        for st in allowed(statements(p["PolicyDocument"])):
            granted.update(as_list(st["Action"]))
            if "iam:PassRole" in as_list(st["Action"]):
                cond = st.get("Condition", {}).get("StringEquals", {})
                check(
                    cond.get("iam:PassedToService") == "personalize.amazonaws.com",
                    "TaskRole: iam:PassRole without the iam:PassedToService condition",
                )
                check("*" not in as_list(st["Resource"]), "TaskRole: iam:PassRole on every role")
    calls, expected = expected_task_actions()
    check(len(calls) > 20, f"found only {len(calls)} calls in src/: the derivation is broken")
    for action in sorted(expected - granted):
        check(False, f"TaskRole does not allow {action}, which the daemon calls")
    for action in sorted(granted - expected):
        check(False, f"TaskRole allows {action}, which the daemon never calls")
    check(expected == granted, "TaskRole's actions are the daemon's calls")
    return calls


# ------------------------------------------------------------------ the task definition
def settings_keys():
    keys = set()
    section = None
    for line in (ROOT / "config/default.toml").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif "=" in line and not line.startswith("#") and section:
            keys.add(f"{section}.{line.split('=', 1)[0].strip()}")
    return keys


def env_setting(name):
    return ".".join(name.removeprefix("PERSONALIZE_OPS__").lower().split("__"))


def check_task_definition(template):
    task = json.loads((ROOT / "deploy/ecs-task.json").read_text(encoding="utf-8"))
    shape = SESSION.get_service_model("ecs").operation_model("RegisterTaskDefinition").input_shape
    report = ParamValidator().validate(task, shape)
    check(not report.has_errors(), f"ecs-task.json: {report.generate_report()}")
    container = task["containerDefinitions"][0]
    check(task.get("requiresCompatibilities") == ["FARGATE"], "ecs-task.json: not FARGATE")
    check(container.get("readonlyRootFilesystem") is True, "ecs-task.json: root filesystem writable")
    user = container.get("user", "")
    check(re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", user) is not None, f"ecs-task.json: user {user!r} is not a numeric non-root user")
    check("healthcheck" in container.get("healthCheck", {}).get("command", []), "ecs-task.json: no healthcheck command")
    stop = container.get("stopTimeout", 0)
    check(isinstance(stop, int) and stop >= 30, "ecs-task.json: stopTimeout shorter than the daemon's shutdown")
    check(container.get("logConfiguration", {}).get("logDriver") == "awslogs", "ecs-task.json: not awslogs")
    names = {e["name"] for e in container.get("environment", [])}
    keys = settings_keys()
    for name in sorted(names):
        if name.startswith("PERSONALIZE_OPS__"):
            check(env_setting(name) in keys, f"ecs-task.json: {name} names no setting of config/default.toml")
    # The stack's task definition and the file agree on everything that is not a name.
    props = template["Resources"]["TaskDefinition"]["Properties"]
    stack_container = props["ContainerDefinitions"][0]
    pairs = [
        (task["cpu"], props["Cpu"], "cpu"),
        (task["memory"], props["Memory"], "memory"),
        (container["user"], stack_container["User"], "user"),
        (container["readonlyRootFilesystem"], stack_container["ReadonlyRootFilesystem"], "readonlyRootFilesystem"),
        (container["stopTimeout"], stack_container["StopTimeout"], "stopTimeout"),
        (container["command"], stack_container["Command"], "command"),
        (container["healthCheck"]["command"], stack_container["HealthCheck"]["Command"], "healthCheck"),
    ]
    for in_file, in_stack, what in pairs:
        check(in_file == in_stack, f"ecs-task.json's {what} {in_file!r} is not the stack's {in_stack!r}")
    stack_env = stack_container["Environment"]
    stack_names = {e["Name"] for e in stack_env}
    check(names == stack_names, f"ecs-task.json and the stack set different variables: {sorted(names ^ stack_names)}")
    for name in sorted(stack_names):
        check(env_setting(name) in keys, f"stack.yaml: {name} names no setting of config/default.toml")


def main():
    template = yaml.safe_load((ROOT / "deploy/stack.yaml").read_text(encoding="utf-8"))
    operator_functions_stay_out_of_the_daemon()
    calls = check_stack(template)
    check_task_definition(template)
    for f in failures:
        print("FAILED:", f)
    print("daemon calls:", ", ".join(f"{CRATES[c][1]}:{o}" for c, o in sorted(calls)))
    print(f"deploy checks: {passed} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
