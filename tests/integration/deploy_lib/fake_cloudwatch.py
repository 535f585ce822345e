#!/usr/bin/env python3
"""A fake CloudWatch PutMetricData endpoint for tests, on 127.0.0.1 only.

It checks every request the way CloudWatch does, independently of DSpark's
signer: the SigV4 Authorization header is recomputed from the request as
received (method, path, query, the signed headers and the body's SHA-256)
with the secret key from FAKE_CW_SECRET_KEY, and the credential scope must
name FAKE_CW_REGION and the service "monitoring". Accepted metrics are
appended to the --record file as JSON lines:
    {"namespace", "name", "value", "unit", "dimensions": {name: value},
     "access_key", "session_token"}
Rejected requests are appended as {"rejected": CODE, "message"}.

Usage: fake_cloudwatch.py --port-file FILE --record FILE [--fail-first N]
--fail-first N returns HTTP 503 to the first N valid requests so the
client's retry can be tested. The chosen port is written to --port-file
once the server listens.
"""
import argparse
import os
import datetime
import hashlib
import hmac
import json
import re
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
    r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$")


def uri_encode(s, keep_slash):
    safe = "-._~" + ("/" if keep_slash else "")
    return urllib.parse.quote(s, safe=safe)


def hmac_sha256(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


class Handler(BaseHTTPRequestHandler):
    server_version = "FakeCloudWatch/1"

    def log_message(self, fmt, *args):
        sys.stderr.write("fake_cloudwatch: " + (fmt % args) + "\n")

    def reject(self, status, code, message):
        self.server.record({"rejected": code, "message": message})
        body = ("<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code>"
                "<Message>%s</Message></Error><RequestId>fake</RequestId></ErrorResponse>"
                % (code, message)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def check_signature(self, body):
        auth = self.headers.get("Authorization", "")
        m = AUTH_RE.match(auth)
        if not m:
            return "IncompleteSignature", "malformed Authorization header: %r" % auth[:80]
        access_key, date, region, service, signed, signature = m.groups()
        if access_key != self.server.access_key:
            return "InvalidClientTokenId", "unknown access key %s" % access_key
        if region != self.server.region or service != "monitoring":
            return "SignatureDoesNotMatch", "scope %s/%s, expected %s/monitoring" % (
                region, service, self.server.region)
        amz_date = self.headers.get("X-Amz-Date", "")
        if not amz_date.startswith(date):
            return "SignatureDoesNotMatch", "X-Amz-Date %r does not match scope date" % amz_date
        sent = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.timezone.utc)
        skew = abs((datetime.datetime.now(datetime.timezone.utc) - sent).total_seconds())
        if skew > 900:
            return "RequestExpired", "X-Amz-Date is %d s away from now" % skew
        names = signed.split(";")
        for required in ("host", "x-amz-date"):
            if required not in names:
                return "SignatureDoesNotMatch", "%s is not signed" % required
        if self.headers.get("X-Amz-Security-Token") and "x-amz-security-token" not in names:
            return "SignatureDoesNotMatch", "x-amz-security-token is not signed"

        path, _, query = self.path.partition("?")
        pairs = sorted((uri_encode(urllib.parse.unquote(k), False),
                        uri_encode(urllib.parse.unquote(v), False))
                       for k, _, v in (p.partition("=") for p in query.split("&") if p))
        canonical_query = "&".join("%s=%s" % kv for kv in pairs)
        canonical_headers = "".join(
            "%s:%s\n" % (n, " ".join((self.headers.get(n) or "").split())) for n in names)
        canonical = "\n".join([
            self.command, uri_encode(urllib.parse.unquote(path), True), canonical_query,
            canonical_headers, signed, hashlib.sha256(body).hexdigest()])
        scope = "%s/%s/%s/aws4_request" % (date, region, service)
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                             hashlib.sha256(canonical.encode()).hexdigest()])
        key = ("AWS4" + self.server.secret_key).encode()
        for part in (date, region, service, "aws4_request"):
            key = hmac_sha256(key, part)
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return "SignatureDoesNotMatch", "signature mismatch"
        return None

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        problem = self.check_signature(body)
        if problem:
            self.reject(403, *problem)
            return
        ctype = self.headers.get("Content-Type", "")
        if not ctype.startswith("application/x-www-form-urlencoded"):
            self.reject(400, "InvalidParameterValue", "Content-Type %r" % ctype)
            return
        form = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True,
                                           strict_parsing=True))
        if form.get("Action") != "PutMetricData" or form.get("Version") != "2010-08-01":
            self.reject(400, "InvalidAction", "Action=%s Version=%s" % (
                form.get("Action"), form.get("Version")))
            return
        if self.server.fail_first > 0:
            self.server.fail_first -= 1
            self.server.record({"rejected": "ServiceUnavailable", "message": "injected"})
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return

        i = 1
        while "MetricData.member.%d.MetricName" % i in form:
            prefix = "MetricData.member.%d." % i
            dims = {}
            j = 1
            while prefix + "Dimensions.member.%d.Name" % j in form:
                dims[form[prefix + "Dimensions.member.%d.Name" % j]] = \
                    form[prefix + "Dimensions.member.%d.Value" % j]
                j += 1
            self.server.record({
                "namespace": form.get("Namespace"),
                "name": form[prefix + "MetricName"],
                "value": float(form[prefix + "Value"]),
                "unit": form.get(prefix + "Unit"),
                "dimensions": dims,
                "access_key": AUTH_RE.match(self.headers["Authorization"]).group(1),
                "session_token": self.headers.get("X-Amz-Security-Token"),
            })
            i += 1
        body = (b"<PutMetricDataResponse xmlns=\"http://monitoring.amazonaws.com/doc/2010-08-01/\">"
                b"<ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata>"
                b"</PutMetricDataResponse>")
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(HTTPServer):
    def record(self, entry):
        with open(self.record_path, "a") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--record", required=True)
    ap.add_argument("--fail-first", type=int, default=0)
    args = ap.parse_args()


    server = Server(("127.0.0.1", 0), Handler)
    server.access_key = os.environ["FAKE_CW_ACCESS_KEY"]
    server.secret_key = os.environ["FAKE_CW_SECRET_KEY"]
    server.region = os.environ.get("FAKE_CW_REGION", "us-east-1")
    server.fail_first = args.fail_first
    server.record_path = args.record
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
