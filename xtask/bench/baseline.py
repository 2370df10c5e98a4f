#!/usr/bin/env python3
"""Baseline for `cargo xtask bench`: a plain Python client (standard library only) that signs
in to the Salesforce simulator with the device flow and fetches the pages an import needs, one
query after another, decoding every page's JSON. It writes nothing anywhere: it measures what
fetching and parsing alone cost a straightforward sequential client.

With `bulk` it reads LoginHistory as the import does for a big org: one Bulk API 2.0 query
job, its CSV result sets of 25,000 rows parsed with the csv module, then the job deleted.

Usage: baseline.py BASE_URL LOGIN_HISTORY_DAYS [rest|bulk]
Prints one JSON line: {"seconds": S, "records": N, "requests": N}.
"""

import csv
import datetime
import gzip
import io
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


def call(url, token, method="GET", body=None, accept="application/json"):
    """One request; returns (headers, body bytes, inflated)."""
    headers = {"Accept-Encoding": "gzip", "Accept": accept, "Authorization": "Bearer " + token}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    with urllib.request.urlopen(request) as answer:
        raw = answer.read()
        if answer.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        return answer.headers, raw


def bulk_rows(jobs, soql, token):
    """Reads `soql` through a Bulk API 2.0 job; returns (rows, requests)."""
    _, body = call(jobs, token, "POST", {"operation": "query", "query": soql})
    job = jobs + "/" + json.loads(body)["id"]
    requests, delay = 1, 0.2
    while True:
        time.sleep(delay)
        _, body = call(job, token)
        requests += 1
        state = json.loads(body)["state"]
        if state == "JobComplete":
            break
        if state in ("Failed", "Aborted"):
            sys.exit("bulk job " + state)
        delay = min(delay * 2, 5)
    rows, locator = 0, None
    while True:
        url = job + "/results?maxRecords=25000"
        if locator:
            url += "&locator=" + urllib.parse.quote(locator)
        headers, body = call(url, token, accept="text/csv")
        requests += 1
        reader = csv.reader(io.StringIO(body.decode()))
        next(reader, None)
        rows += sum(1 for _ in reader)
        locator = headers.get("Sforce-Locator")
        if not locator or locator == "null":
            break
    call(job, token, "DELETE")
    return rows, requests + 1


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
    bulk = len(sys.argv) > 3 and sys.argv[3] == "bulk"
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
    if bulk:
        rows, calls = bulk_rows(instance + version + "/jobs/query", queries.pop(), access)
        records, requests = rows, calls
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
