#!/usr/bin/env python3
"""Signs in to the console from a given source address (a loopback alias such as 127.0.0.2),
as a browser does: GET /sign-in for the form's CSRF cookie and token, then POST the form.
Prints the answer's status code, one per attempt."""
import argparse
import http.client
import re
import urllib.parse


def request(host, port, source, method, path, body=None, headers=None):
    connection = http.client.HTTPConnection(host, port, timeout=30, source_address=(source, 0))
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.getheader("Set-Cookie") or "", response.read().decode("utf-8", "replace")
    finally:
        connection.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True, help="http://127.0.0.1:PORT")
    parser.add_argument("--source", required=True, help="the client's address")
    parser.add_argument("--name", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--times", type=int, default=1)
    args = parser.parse_args()
    url = urllib.parse.urlsplit(args.base)
    for _ in range(args.times):
        _, cookie, page = request(url.hostname, url.port, args.source, "GET", "/sign-in")
        token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        form = urllib.parse.urlencode({"name": args.name, "password": args.password, "csrf": token})
        status, _, _ = request(url.hostname, url.port, args.source, "POST", "/sign-in", body=form, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie.split(";")[0]})
        print(status)


if __name__ == "__main__":
    main()
