#!/usr/bin/env python3
"""Baseline for `cargo xtask bench`: a plain Python client (standard library only) that signs
in to the Salesforce simulator with the device flow and fetches the pages an import needs, one
query after another, decoding every page's JSON. It writes nothing anywhere: it measures what
fetching and parsing alone cost a straightforward sequential client.

Usage: baseline.py BASE_URL LOGIN_HISTORY_DAYS
Prints one JSON line: {"seconds": S, "records": N, "requests": N}.
"""

import datetime
import gzip
import json
import sys
import time
import urllib.parse
import urllib.request

KEY, SECRET = "SIM_CONSUMER_KEY", "SIM_CONSUMER_SECRET"


def post(url, form):
    data = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    try:
        with urllib.request.urlopen(request) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return json.loads(error.read())


def get(url, token=None):
    headers = {"Accept-Encoding": "gzip", "Accept": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as answer:
        body = answer.read()
        if answer.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        return json.loads(body)


def sign_in(base):
    token_url = base + "/services/oauth2/token"
    codes = post(token_url, {"response_type": "device_code", "client_id": KEY})
    while True:
        time.sleep(codes.get("interval", 1))
        answer = post(
            token_url,
            {"grant_type": "device", "client_id": KEY, "client_secret": SECRET,
             "code": codes["device_code"]},
        )
        if "access_token" in answer:
            return answer
        if answer.get("error") != "authorization_pending":
            sys.exit("device flow failed: " + answer.get("error", "?"))


def main():
    base, days = sys.argv[1].rstrip("/"), int(sys.argv[2])
    tokens = sign_in(base)
    started = time.monotonic()
    instance, access = tokens["instance_url"].rstrip("/"), tokens["access_token"]
    versions = get(instance + "/services/data/")
    version = max(versions, key=lambda v: tuple(int(p) for p in v["version"].split(".")))["url"]
    since = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days))
    since = since.strftime("%Y-%m-%dT%H:%M:%SZ")
    queries = [
        "SELECT Id, Name, OrganizationType, InstanceName, IsSandbox FROM Organization",
        "SELECT Id, Name, MasterLabel, LicenseDefinitionKey, Status, TotalLicenses, UsedLicenses FROM UserLicense",
        "SELECT Id, Name, UserLicenseId FROM Profile",
        "SELECT Id, DeveloperName, MasterLabel, Status, TotalLicenses, UsedLicenses, ExpirationDate FROM PermissionSetLicense",
        "SELECT Id, NamespacePrefix, AllowedLicenses, UsedLicenses, ExpirationDate, Status FROM PackageLicense",
        "SELECT UserId, IsFrozen FROM UserLogin WHERE IsFrozen = true",
        "SELECT Id, Username, Name, Email, IsActive, UserType, ProfileId, LastLoginDate, CreatedDate, "
        "UserPermissionsMarketingUser, UserPermissionsOfflineUser, UserPermissionsMobileUser, "
        "UserPermissionsSFContentUser, UserPermissionsKnowledgeUser, UserPermissionsInteractionUser, "
        "UserPermissionsSupportUser, UserPermissionsLiveAgentUser, UserPermissionsChatterAnswersUser FROM User",
        "SELECT AssigneeId, PermissionSetLicenseId FROM PermissionSetLicenseAssign",
        "SELECT UserId, PackageLicenseId FROM UserPackageLicense",
        "SELECT UserId, LoginTime, LoginType, Status, ApiType FROM LoginHistory WHERE LoginTime >= " + since,
    ]
    records = requests = 0
    for soql in queries:
        page = get(instance + version + "/query?q=" + urllib.parse.quote(soql), access)
        requests += 1
        records += len(page["records"])
        while not page.get("done", True):
            page = get(instance + page["nextRecordsUrl"], access)
            requests += 1
            records += len(page["records"])
    print(json.dumps({"seconds": time.monotonic() - started, "records": records,
                      "requests": requests}))


if __name__ == "__main__":
    main()
