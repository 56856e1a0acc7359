"""The file: URI codec against what the Codex 0.171.0 binary answered (probed over loopback).

Each case is a ``path`` sent to the 0.171 ``fs/getMetadata`` (or ``fs/canonicalize``) and what it
answered: the local path it used, a -32602 parse error, or -32600 ``'<uri>' is invalid on
'linux'`` (a Windows URI). The serialisation cases are what ``fs/canonicalize`` printed for
directories with those names.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import TestCase

from twisted_exec.compat.fileuri import (
    ForeignUriError,
    UriParseError,
    fromHostPath,
    hasScheme,
    parseUri,
)

#: URI -> the host path the reference used.
LOCAL = {
    "file:///tmp": "/tmp",
    "file:/tmp": "/tmp",
    "file:tmp": "/tmp",
    "file://localhost/tmp": "/tmp",
    "file://LOCALHOST/tmp": "/tmp",
    "FILE:///tmp": "/tmp",
    " file:///tmp ": "/tmp",
    "file:///tm\tp": "/tmp",
    "file:///tmp/../etc": "/etc",
    "file:///tmp/%2e%2E/etc": "/etc",
    "file:///%2Ftmp": "/tmp",
    "file:///tmp%2F": "/tmp",
    "file:\\\\\\tmp": "/tmp",
    "file:///tmp\\..\\etc": "/etc",
    "file:": "/",
    "file://": "/",
    "file:///": "/",
    "file:///tmp/./": "/tmp",
    "file:////tmp": "/tmp",
    "file://///tmp": "/tmp",
    "file:///tmp/\x00": "/tmp",
    "file:///x/nonexist%2F..%2Fnames": "/x/names",
    "file:///tmp/C:/x": "/tmp/C:/x",
    "file:///c|": "/c|",
    "file:..\\..\\tmp": "/tmp",
    "file:///%2e": "/",
    "file://localhost": "/",
    "file:///tmp/a b": "/tmp/a b",
    "file:///tmp/%zz": "/tmp/%zz",
    "file:///tmp/%41": "/tmp/A",
    "file:///tmp/\u00e4": "/tmp/\u00e4",
    "file:///a%ff": os.fsdecode(b"/a\xff"),
}

#: URI -> the -32602 message.
PARSE_ERRORS = {
    "file:///tmp?": "query parameters are not allowed in path URIs",
    "file:///tmp?a=1": "query parameters are not allowed in path URIs",
    "file:///tmp#": "fragments are not allowed in path URIs",
    "file:///tmp#f": "fragments are not allowed in path URIs",
    "file:///a b?q": "query parameters are not allowed in path URIs",
    "file://user@/tmp": "invalid URI: invalid international domain name",
    "file://u:p@host/tmp": "invalid URI: invalid international domain name",
    "file://host:80/tmp": "invalid URI: invalid international domain name",
    "file://:80/tmp": "invalid URI: invalid international domain name",
    "file://exa mple/x": "invalid URI: invalid international domain name",
    "file://ex%20ample/x": "invalid URI: invalid international domain name",
    "file://xn--/x": "invalid URI: invalid international domain name",
    "file://%/x": "invalid URI: invalid international domain name",
    "file://a^b/x": "invalid URI: invalid international domain name",
    "file://[": "invalid URI: invalid IPv6 address",
    "file://1.2.3.256/x": "invalid URI: invalid IPv4 address",
    "file://09/x": "invalid URI: invalid IPv4 address",
    "file://a.1/x": "invalid URI: invalid IPv4 address",
    "file:///tmp%00": "'file:///tmp%00' is invalid on 'linux'",
    "http://x/tmp": "unsupported path URI scheme `http`",
    "http://": "invalid URI: empty host",
    "ws://": "invalid URI: empty host",
    "https://a b/": "invalid URI: invalid international domain name",
    "http://x:99999/": "invalid URI: invalid port number",
    "http:x": "unsupported path URI scheme `http`",
    "ftp:/x": "unsupported path URI scheme `ftp`",
    "x:/tmp": "unsupported path URI scheme `x`",
    "c:/x": "unsupported path URI scheme `c`",
    "data:x": "unsupported path URI scheme `data`",
    "mailto:": "unsupported path URI scheme `mailto`",
    "a+b-c.d:/x": "unsupported path URI scheme `a+b-c.d`",
    "1abc:/x": "invalid URI: relative URL without a base",
    "": "invalid URI: relative URL without a base",
    "/tmp": "invalid URI: relative URL without a base",
    "tmp": "invalid URI: relative URL without a base",
}

#: URI -> its canonical form, which a Linux host refuses (-32600 in fs/*).
FOREIGN = {
    "file://host/tmp": "file://host/tmp",
    "file://HOST/x": "file://host/x",
    "file://host": "file://host/",
    "file:///C:/x": "file:///C:/x",
    "file://C:/x": "file:///C:/x",
    "file:/C|/x": "file:///C:/x",
    "file:c:/x": "file:///c:/x",
    "file:///C:/../x": "file:///C:/x",
    "file://[::1]/x": "file://[::1]/x",
    "file://[::ffff:1.2.3.4]/x": "file://[::ffff:102:304]/x",
    "file://[1:0:0:0:0:0:0:1]/x": "file://[1::1]/x",
    "file://1.2.3.4/x": "file://1.2.3.4/x",
    "file://1.2.3/x": "file://1.2.0.3/x",
    "file://0x7f.1/x": "file://127.0.0.1/x",
    "file://%41/x": "file://a/x",
    "file://xn--nxasmq6b/x": "file://xn--nxasmq6b/x",
    "file://B\u00fccher/x": "file://xn--bcher-kva/x",
    "file://a_b!$&'()*+,;=~/x": "file://a_b!$&'()*+,;=~/x",
    "file://a..b/x": "file://a..b/x",
    "file://./x": "file://./x",
    "file://../x": "file://../x",
    'file://host/a b<>"{}|^`%zz%41\u00e4': "file://host/a%20b%3C%3E%22%7B%7D|^%60%zz%41%C3%A4",
    "file:///%00/bad/path/L3RtcA": "file:///%00/bad/path/L3RtcA",
}

#: directory name -> the last segment of fs/canonicalize's URI for it.
SERIALISED = {
    "a b": "a%20b",
    "a%b": "a%25b",
    "a%41b": "a%2541b",
    "a#b": "a%23b",
    "a?b": "a%3Fb",
    "a\\b": "a%5Cb",
    "\u00e4": "%C3%A4",
    'a"b': "a%22b",
    "a<b>": "a%3Cb%3E",
    "a`b": "a%60b",
    "a{b}": "a%7Bb%7D",
    "a|b": "a|b",
    "a^b": "a^b",
    "a[b]": "a[b]",
    "a;b": "a;b",
    "a=b": "a=b",
    "a@b": "a@b",
    "a:b": "a:b",
    "a'b": "a'b",
    "a\x01b": "a%01b",
    "a\x7fb": "a%7Fb",
    "a~b": "a~b",
    "a!b$&()*+,": "a!b$&()*+,",
    "C:": "C:",
    "a\tb": "a%09b",
    "a\nb": "a%0Ab",
    "\u00a0x": "%C2%A0x",
    "a..": "a..",
    "..a": "..a",
    "%2e%2e": "%252e%252e",
    "\u65e5\u672c": "%E6%97%A5%E6%9C%AC",
    os.fsdecode(b"a\xffb"): "a%FFb",
}


class ParseTests(TestCase):
    def test_localPaths(self) -> None:
        for uri, path in LOCAL.items():
            with self.subTest(uri=uri):
                self.assertEqual(parseUri(uri).hostPath(), path)

    def test_parseErrors(self) -> None:
        for uri, message in PARSE_ERRORS.items():
            with self.subTest(uri=uri):
                with self.assertRaises(UriParseError) as caught:
                    parseUri(uri)
                self.assertEqual(caught.exception.message, message)

    def test_foreignUris(self) -> None:
        for uri, canonical in FOREIGN.items():
            with self.subTest(uri=uri):
                parsed = parseUri(uri)
                self.assertEqual(parsed.text, canonical)
                with self.assertRaises(ForeignUriError) as caught:
                    parsed.hostPath()
                self.assertEqual(caught.exception.message, f"'{canonical}' is invalid on 'linux'")

    def test_canonicalText(self) -> None:
        self.assertEqual(parseUri("file:/tmp").text, "file:///tmp")
        self.assertEqual(parseUri("FILE://localhost/a b").text, "file:///a%20b")
        self.assertEqual(parseUri("file:///tmp/./").text, "file:///tmp/")

    def test_hasScheme(self) -> None:
        self.assertTrue(hasScheme("file:///x"))
        self.assertTrue(hasScheme(" http://x"))
        self.assertFalse(hasScheme("/tmp"))
        self.assertFalse(hasScheme("relative/x"))
        self.assertFalse(hasScheme(""))
        self.assertFalse(hasScheme("1abc:/x"))


class SerialiseTests(TestCase):
    def test_segments(self) -> None:
        base = "/work/scratch/dialect/names"
        for name, encoded in SERIALISED.items():
            with self.subTest(name=name):
                self.assertEqual(fromHostPath(f"{base}/{name}"), f"file://{base}/{encoded}")

    def test_roundTrip(self) -> None:
        for name in SERIALISED:
            with self.subTest(name=name):
                path = f"/x/{name}"
                self.assertEqual(parseUri(fromHostPath(path)).hostPath(), path)

    def test_rootAndBytes(self) -> None:
        self.assertEqual(fromHostPath("/"), "file:///")
        self.assertEqual(fromHostPath(b"/a/\xff"), "file:///a/%FF")
        self.assertEqual(fromHostPath("/a//b/./c/"), "file:///a/b/c")

    def test_relativeRefused(self) -> None:
        self.assertRaises(ValueError, fromHostPath, "relative")
