"""The packaged prod stack: `chalice package --merge-template` + cfn-lint, and what it holds.

Packaging runs once per session into a temp dir (about 10 s with Chalice's dependency cache
in .chalice/deployments; the first run downloads the Lambda wheels).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.settings import REQUIRED_ON_LAMBDA
from chalicelib.store import keys
from infra.package import lint, package

PUBLIC_ROUTES = ("/api/auth/challenge", "/api/auth/session", "/api/vault/bootstrap")
WEBHOOK = "/api/premium/webhook"
WS_FUNCTIONS = ("WebsocketConnect", "WebsocketMessage", "WebsocketDisconnect")
LIVE_CONNECTIONS = {
    "Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:"
    "${WebsocketAPI}/prod/*/@connections/*"
}


@pytest.fixture(scope="module")
def sam(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return package(tmp_path_factory.mktemp("package"), "prod")


@pytest.fixture(scope="module")
def stack(sam: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(sam.read_text())
    return doc


def of_type(stack: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in stack["Resources"].items() if v["Type"] == kind}


def test_cfn_lint_finds_nothing(sam: Path) -> None:
    # WHEN cfn-lint checks the packaged template (errors and warnings)
    result = lint(sam)
    # THEN it has nothing to say
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr
    assert (sam.parent / "deployment.zip").stat().st_size > 0


def test_table_is_on_demand_recoverable_encrypted_protected(stack: dict[str, Any]) -> None:
    table = stack["Resources"]["SyncTable"]
    props = table["Properties"]
    assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain"
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert props["DeletionProtectionEnabled"] is True
    (lsi,) = props["LocalSecondaryIndexes"]
    assert lsi["IndexName"] == "byVersion"
    # An LSI entry counts toward its item's 400 KB: projecting ciphertext would halve the
    # largest item we can store. Pull fetches the rest from the base table (ALL_ATTRIBUTES).
    assert lsi["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert [k["AttributeName"] for k in lsi["KeySchema"]] == ["pk", "ver"]
    # The purge index is sparse (only marked heads and tombstones carry its keys) and small:
    # it projects the commit time only, which the purge compares with its cutoff.
    (gsi,) = props["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == keys.PURGE_INDEX
    assert [k["AttributeName"] for k in gsi["KeySchema"]] == [keys.PURGE_PK, keys.PURGE_SK]
    assert gsi["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["updatedAt"]}


def test_bucket_is_private_encrypted_unversioned_with_pending_expiry_and_cors(
    stack: dict[str, Any],
) -> None:
    props = stack["Resources"]["AttachmentBucket"]["Properties"]
    assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(props["PublicAccessBlockConfiguration"]) == 4
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert "VersioningConfiguration" not in props
    rules = props["LifecycleConfiguration"]["Rules"]
    pending = [r for r in rules if r.get("TagFilters")]
    assert pending[0]["TagFilters"] == [{"Key": "nt2-state", "Value": "pending"}]
    assert pending[0]["Status"] == "Enabled" and pending[0]["ExpirationInDays"] >= 1
    (cors,) = props["CorsConfiguration"]["CorsRules"]
    assert set(cors["AllowedMethods"]) == {"PUT", "GET"}
    assert {"content-type", "x-amz-checksum-sha256"} <= set(cors["AllowedHeaders"])
    assert cors["AllowedOrigins"] == {"Ref": "AllowedOrigins"}
    assert stack["Parameters"]["AllowedOrigins"]["Type"] == "CommaDelimitedList"


def test_functions_use_this_stacks_table_bucket_and_origins(stack: dict[str, Any]) -> None:
    env = stack["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert env["TABLE_NAME"] == {"Ref": "SyncTable"}
    assert env["BUCKET_NAME"] == {"Ref": "AttachmentBucket"}
    assert env["ALLOWED_ORIGINS"] == {"Fn::Join": [",", {"Ref": "AllowedOrigins"}]}
    assert env["PUBLIC_API_URL"] == {"Ref": "PublicApiUrl"}
    assert env["PREMIUM_SYNC_REQUIRED"] == "true"
    purge = stack["Resources"]["PurgeTombstones"]["Properties"]["Environment"]["Variables"]
    assert purge["TABLE_NAME"] == {"Ref": "SyncTable"}
    # Every function has what a Lambda cold start requires (settings.REQUIRED_ON_LAMBDA).
    for function in ("APIHandler", "PurgeTombstones"):
        variables = stack["Resources"][function]["Properties"]["Environment"]["Variables"]
        assert set(REQUIRED_ON_LAMBDA) <= set(variables), function


def test_roles_point_at_this_stacks_resources_only(stack: dict[str, Any]) -> None:
    allowed = [
        {"Fn::GetAtt": ["SyncTable", "Arn"]},
        {"Fn::Sub": "${SyncTable.Arn}/index/byVersion"},
        {"Fn::Sub": "${SyncTable.Arn}/index/byPurge"},
        {"Fn::Sub": "${AttachmentBucket.Arn}/*"},
        {"Fn::GetAtt": ["ApiHandlerLogGroup", "Arn"]},
        {"Fn::GetAtt": ["PurgeTombstonesLogGroup", "Arn"]},
        *({"Fn::GetAtt": [f"{fn}LogGroup", "Arn"]} for fn in WS_FUNCTIONS),
        LIVE_CONNECTIONS,
    ]
    roles = of_type(stack, "AWS::IAM::Role")
    assert set(roles) == {"ApiHandlerRole", "PurgeTombstonesRole"} | {
        f"{fn}Role" for fn in WS_FUNCTIONS
    }
    for role in roles.values():
        for policy in role["Properties"]["Policies"]:
            for st in policy["PolicyDocument"]["Statement"]:
                res = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
                assert all(r in allowed for r in res), res


def test_stage_is_throttled_and_platform_errors_are_readable(stack: dict[str, Any]) -> None:
    api = stack["Resources"]["RestAPI"]["Properties"]
    (settings,) = api["MethodSettings"]
    assert settings["ResourcePath"] == "/*" and settings["HttpMethod"] == "*"
    assert settings["ThrottlingRateLimit"] and settings["ThrottlingBurstLimit"]
    responses = api["DefinitionBody"]["x-amazon-apigateway-gateway-responses"]
    expected = {
        "DEFAULT_4XX": "invalid_request",
        "DEFAULT_5XX": "internal_error",
        "UNAUTHORIZED": "unauthorized",
        "ACCESS_DENIED": "unauthorized",
        "REQUEST_TOO_LARGE": "payload_too_large",
        "THROTTLED": "rate_limited",
        "WAF_FILTERED": "rate_limited",
    }
    for kind, code in expected.items():
        resp = responses[kind]
        headers = resp["responseParameters"]
        assert "gatewayresponse.header.Access-Control-Allow-Origin" in headers, kind
        assert headers["gatewayresponse.header.Access-Control-Expose-Headers"] == "'Retry-After'"
        body = resp["responseTemplates"]["application/json"]
        assert body.startswith('{"code":"' + code + '","message":'), kind
    assert "gatewayresponse.header.Retry-After" in responses["THROTTLED"]["responseParameters"]
    assert responses["WAF_FILTERED"]["statusCode"] == "429"


def _searched_paths(statement: dict[str, Any]) -> set[str]:
    scope = statement["RateBasedStatement"]["ScopeDownStatement"]
    parts = scope["OrStatement"]["Statements"] if "OrStatement" in scope else [scope]
    return {p["ByteMatchStatement"]["SearchString"] for p in parts}


def test_waf_limits_public_routes_per_client_ip_on_the_stage(stack: dict[str, Any]) -> None:
    (acl,) = of_type(stack, "AWS::WAFv2::WebACL").values()
    assert acl["Properties"]["Scope"] == "REGIONAL"
    limited: set[str] = set()
    for rule in acl["Properties"]["Rules"]:
        st = rule["Statement"]
        assert st["RateBasedStatement"]["AggregateKeyType"] == "IP"
        assert rule["Action"] == {"Block": {}}
        limited |= _searched_paths(st)
    assert limited == {*PUBLIC_ROUTES, WEBHOOK}
    (assoc,) = of_type(stack, "AWS::WAFv2::WebACLAssociation").values()
    arn = assoc["Properties"]["ResourceArn"]["Fn::Sub"]
    assert arn.endswith("/restapis/${RestAPI}/stages/prod")


def test_alarms_watch_5xx_lambda_errors_throttles_and_table_throttles(
    stack: dict[str, Any],
) -> None:
    watched: set[tuple[str, str]] = set()
    for alarm in of_type(stack, "AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}]
        if "MetricName" in props:
            watched.add((props["Namespace"], props["MetricName"]))
        for metric in props.get("Metrics", []):
            if "MetricStat" in metric:
                m = metric["MetricStat"]["Metric"]
                watched.add((m["Namespace"], m["MetricName"]))
    assert {
        ("AWS/ApiGateway", "5XXError"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
        ("AWS/DynamoDB", "ReadThrottleEvents"),
        ("AWS/DynamoDB", "WriteThrottleEvents"),
    } <= watched


@pytest.mark.parametrize("stage", ["dev", "test"])
def test_every_stage_is_throttled_and_behind_the_waf(
    stage: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # v1.2: per-IP limits belong to the platform in every deployed stage, not only prod
    sam_file = package(tmp_path_factory.mktemp(stage), stage)
    doc = json.loads(sam_file.read_text())
    settings = doc["Resources"]["RestAPI"]["Properties"]["MethodSettings"][0]
    assert settings["ThrottlingRateLimit"] and settings["ThrottlingBurstLimit"]
    assert doc["Resources"]["RestAPI"]["Properties"]["StageName"] == stage
    (assoc,) = of_type(doc, "AWS::WAFv2::WebACLAssociation").values()
    assert assoc["Properties"]["ResourceArn"]["Fn::Sub"].endswith(f"/stages/{stage}")
    assert assoc["DependsOn"] == [f"RestAPI{stage}Stage"]
    text = json.dumps(doc)
    assert "stages/prod" not in text and "RestAPIprodStage" not in text
    result = lint(sam_file)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout


def test_the_websocket_api_its_stage_and_handlers_are_packaged(stack: dict[str, Any]) -> None:
    res = stack["Resources"]
    # GIVEN the packaged stack THEN it holds the §10 WebSocket API, its stage and routes
    assert res["WebsocketAPI"]["Properties"]["ProtocolType"] == "WEBSOCKET"
    assert res["WebsocketAPIStage"]["Properties"]["StageName"] == "prod"
    routes = {
        r["Properties"]["RouteKey"] for r in of_type(stack, "AWS::ApiGatewayV2::Route").values()
    }
    assert routes == {"$connect", "$default", "$disconnect"}
    # AND every function that posts frames knows the management endpoint of that API
    for fn in ("APIHandler", *WS_FUNCTIONS):
        env = res[fn]["Properties"]["Environment"]["Variables"]
        assert "${WebsocketAPI}" in env["LIVE_MANAGEMENT_URL"]["Fn::Sub"], fn
        assert env["TABLE_NAME"] == {"Ref": "SyncTable"}, fn
    assert res["APIHandler"]["Properties"]["Environment"]["Variables"]["LIVE_WS_URL"]
    # AND only the API handler and $default manage connections, on that API only
    for name, role in of_type(stack, "AWS::IAM::Role").items():
        statements = role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        manages = [st for st in statements if "execute-api:ManageConnections" in st["Action"]]
        if name in {"ApiHandlerRole", "WebsocketMessageRole"}:
            assert [st["Resource"] for st in manages] == [LIVE_CONNECTIONS], name
        else:
            assert manages == [], name


def test_the_deployment_zip_carries_unchecked_bytecode_for_every_module(sam: Path) -> None:
    import importlib.util
    import sys
    import zipfile

    # GIVEN the packaged deployment zip
    with zipfile.ZipFile(sam.parent / "deployment.zip") as z:
        names = set(z.namelist())
        tag = sys.implementation.cache_tag
        # THEN the app and every chalicelib module have a pyc beside them (Lambda's code
        # directory is read-only: without one, every cold start compiles from source)
        ours = [
            n for n in names if n.endswith(".py") and n.split("/")[0] in {"app.py", "chalicelib"}
        ]
        assert "app.py" in ours and len(ours) > 40
        for source in ours:
            folder, _, name = source.rpartition("/")
            pyc = f"{folder + '/' if folder else ''}__pycache__/{name[:-3]}.{tag}.pyc"
            data = z.read(pyc)
            # AND each is an unchecked-hash pyc of exactly that source (PEP 552: flags == 1)
            assert data[:4] == importlib.util.MAGIC_NUMBER
            assert int.from_bytes(data[4:8], "little") == 1
            assert data[8:16] == importlib.util.source_hash(z.read(source))


# The web client's hosting (WebClient=enabled): a private bucket read by CloudFront only.
WEB_RESOURCES = (
    "WebBucket",
    "WebBucketPolicy",
    "WebOriginAccessControl",
    "WebResponseHeaders",
    "WebRoutes",
    "WebDistribution",
)


def _resolve(node: Any, env: dict[str, str]) -> Any:
    """The value of the few intrinsic functions the web client's headers use."""
    if isinstance(node, dict) and len(node) == 1:
        ((fn, arg),) = node.items()
        if fn == "Ref":
            return env[arg]
        if fn == "Fn::Join":
            return arg[0].join(str(_resolve(part, env)) for part in arg[1])
        if fn == "Fn::Split":
            return str(_resolve(arg[1], env)).split(arg[0])
        if fn == "Fn::Select":
            return _resolve(arg[1], env)[arg[0]]
    return node


def test_web_client_hosting_exists_only_when_enabled(stack: dict[str, Any]) -> None:
    # GIVEN the packaged stack THEN the web client is off unless asked for
    param = stack["Parameters"]["WebClient"]
    assert param["Default"] == "disabled" and set(param["AllowedValues"]) == {"enabled", "disabled"}
    assert stack["Conditions"]["HasWebClient"] == {"Fn::Equals": [{"Ref": "WebClient"}, "enabled"]}
    res = stack["Resources"]
    # AND every resource and output of it hangs on that condition
    for name in WEB_RESOURCES:
        assert res[name]["Condition"] == "HasWebClient", name
    web_outputs = [k for k in stack["Outputs"] if k.startswith("WebClient") or k.startswith("WebB")]
    assert {"WebClientUrl", "WebBucketName", "WebClientConfig"} <= set(web_outputs)
    for name in web_outputs:
        assert stack["Outputs"][name]["Condition"] == "HasWebClient", name
    # AND a custom domain needs its certificate (else CloudFront's own domain is used)
    (rule,) = stack["Rules"]["WebDomainNeedsCertificate"]["Assertions"]
    assert "WebCertificateArn" in json.dumps(rule["Assert"])


def test_web_bucket_is_private_and_readable_by_this_distribution_only(
    stack: dict[str, Any],
) -> None:
    res = stack["Resources"]
    props = res["WebBucket"]["Properties"]
    assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(props["PublicAccessBlockConfiguration"]) == 4
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert "WebsiteConfiguration" not in props  # never an S3 website endpoint (public)
    # THEN the bucket policy allows one thing: CloudFront's GetObject, for this distribution
    policy = res["WebBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "WebBucket"}
    allows = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    denies = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert allows == [
        {
            "Sid": "CloudFrontReadsThroughOac",
            "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Action": "s3:GetObject",
            "Resource": {"Fn::Sub": "${WebBucket.Arn}/*"},
            "Condition": {
                "StringEquals": {
                    "AWS:SourceArn": {
                        "Fn::Sub": "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:"
                        "distribution/${WebDistribution}"
                    }
                }
            },
        }
    ]
    assert [d["Condition"] for d in denies] == [{"Bool": {"aws:SecureTransport": "false"}}]
    # AND CloudFront signs its reads with an origin access control (no legacy OAI)
    oac = res["WebOriginAccessControl"]["Properties"]["OriginAccessControlConfig"]
    assert (oac["OriginAccessControlOriginType"], oac["SigningBehavior"]) == ("s3", "always")
    assert oac["SigningProtocol"] == "sigv4"
    config = res["WebDistribution"]["Properties"]["DistributionConfig"]
    (origin,) = config["Origins"]
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["WebOriginAccessControl", "Id"]}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    assert origin["DomainName"] == {"Fn::GetAtt": ["WebBucket", "RegionalDomainName"]}
    behaviour = config["DefaultCacheBehavior"]
    assert behaviour["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behaviour["AllowedMethods"] == ["GET", "HEAD"]
    assert behaviour["ResponseHeadersPolicyId"] == {"Ref": "WebResponseHeaders"}
    # AND no Lambda role reaches the web bucket (CloudFront reads it, the operator writes it)
    for name, role in of_type(stack, "AWS::IAM::Role").items():
        assert "WebBucket" not in json.dumps(role["Properties"]), name


def test_web_client_headers_are_the_policy_make_serve_uses(stack: dict[str, Any]) -> None:
    from devserver.web_origin import content_security_policy, security_headers

    # GIVEN a stack whose API lives at a path and whose WebSocket API has an id
    env = {
        "PublicApiUrl": "https://sync.example:8443/base",
        "WebsocketAPI": "abc123",
        "AWS::Region": "eu-west-1",
        "AWS::URLSuffix": "amazonaws.com",
    }
    config = stack["Resources"]["WebResponseHeaders"]["Properties"]["ResponseHeadersPolicyConfig"]
    security = config["SecurityHeadersConfig"]
    csp = _resolve(security["ContentSecurityPolicy"]["ContentSecurityPolicy"], env)
    # THEN CloudFront sends exactly the CSP the local web origin sends for the same API, live
    # endpoint and attachment storage: connections to the API's and the WebSocket API's
    # origins, and to S3's (path-style presigned URLs: regional, global in us-east-1) only
    live = "wss://abc123.execute-api.eu-west-1.amazonaws.com/prod"
    storage = ["https://s3.eu-west-1.amazonaws.com", "https://s3.amazonaws.com"]
    assert csp == content_security_policy(env["PublicApiUrl"], live, storage)
    assert "connect-src 'self' https://sync.example:8443 wss://abc123." in csp
    assert security["ContentSecurityPolicy"]["Override"] is True
    # AND the other headers match too
    local = security_headers(env["PublicApiUrl"], live)
    assert security["ReferrerPolicy"]["ReferrerPolicy"] == local["Referrer-Policy"]
    assert security["ContentTypeOptions"] == {"Override": True}  # nosniff
    custom = {h["Header"]: h["Value"] for h in config["CustomHeadersConfig"]["Items"]}
    for name in ("Cross-Origin-Opener-Policy", "Permissions-Policy"):
        assert custom[name] == local[name], name
    assert security["FrameOptions"]["FrameOption"] == "DENY"
    assert security["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000


def test_web_routes_answer_index_html_like_the_local_origin(stack: dict[str, Any]) -> None:
    from devserver.web_origin import APP_ROUTES

    res = stack["Resources"]
    code = res["WebRoutes"]["Properties"]["FunctionCode"]
    # GIVEN the viewer-request function THEN each of the app's History API routes (the
    # same list make serve answers with index.html) is rewritten to index.html
    assert "request.uri = '/index.html'" in code
    for prefix in APP_ROUTES:
        assert f"uri.indexOf('{prefix}') === 0" in code, prefix
    assert code.count("uri.indexOf(") == len(APP_ROUTES)
    behaviour = res["WebDistribution"]["Properties"]["DistributionConfig"]["DefaultCacheBehavior"]
    (association,) = behaviour["FunctionAssociations"]
    assert association["EventType"] == "viewer-request"
    assert association["FunctionARN"] == {
        "Fn::GetAtt": ["WebRoutes", "FunctionMetadata.FunctionARN"]
    }
