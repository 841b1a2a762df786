#!/usr/bin/env python3
"""Writes the provider answers the POS terminal firmware replays, signed with a fresh,
throwaway RSA-2048 key (see README.md in this folder).

Each answer is an Alipay OpenAPI synchronous response as the gateway sends it:
`{"<method>_response":{...},"sign":"..."}`, where `sign` is SHA256withRSA (PKCS#1 v1.5,
"RSA2") over the exact UTF-8 text of the `<method>_response` value. Only the public key is
kept (`alipay-public-key.txt`, bare base64 SPKI as Alipay's console shows it); the private
key lives in memory for one run and is thrown away, so running this again changes every
signature and the key, and nothing else.

Needs Python 3.9+ and the `cryptography` package. Run from anywhere:

    python3 examples/pos-terminal/data/generate.py
"""

import base64
import json
import pathlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

HERE = pathlib.Path(__file__).resolve().parent

BUYER = {"buyer_logon_id": "159****5620", "buyer_user_id": "2088102175953034"}


def trade_no(n):
    return f"20250617220014340305{n:08d}"


def pay_success(order, amount, n, at):
    return "alipay.trade.pay", {
        "code": "10000",
        "msg": "Success",
        **BUYER,
        "buyer_pay_amount": amount,
        "fund_bill_list": [{"amount": amount, "fund_channel": "ALIPAYACCOUNT"}],
        "gmt_payment": f"2025-06-17 {at}",
        "invoice_amount": amount,
        "out_trade_no": order,
        "point_amount": "0.00",
        "receipt_amount": amount,
        "total_amount": amount,
        "trade_no": trade_no(n),
    }


def pay_inprocess(order, amount, n):
    return "alipay.trade.pay", {
        "code": "10003",
        "msg": " order success pay inprocess",
        **BUYER,
        "out_trade_no": order,
        "total_amount": amount,
        "trade_no": trade_no(n),
    }


def query(order, amount, n, status):
    paid = amount if status == "TRADE_SUCCESS" else "0.00"
    return "alipay.trade.query", {
        "code": "10000",
        "msg": "Success",
        **BUYER,
        "buyer_pay_amount": paid,
        "invoice_amount": paid,
        "out_trade_no": order,
        "point_amount": "0.00",
        "receipt_amount": paid,
        "total_amount": amount,
        "trade_no": trade_no(n),
        "trade_status": status,
    }


def close_ok(order, n):
    return "alipay.trade.close", {
        "code": "10000",
        "msg": "Success",
        "out_trade_no": order,
        "trade_no": trade_no(n),
    }


def close_refused(order, n):
    return "alipay.trade.close", {
        "code": "40004",
        "msg": "Business Failed",
        "sub_code": "ACQ.TRADE_STATUS_ERROR",
        "sub_msg": "交易状态不合法",
        "out_trade_no": order,
        "trade_no": trade_no(n),
    }


def refund(order, n, refund_fee, at):
    return "alipay.trade.refund", {
        "code": "10000",
        "msg": "Success",
        **BUYER,
        "fund_change": "Y",
        "gmt_refund_pay": f"2025-06-17 {at}",
        "out_trade_no": order,
        "refund_fee": refund_fee,
        "send_back_fee": refund_fee,
        "trade_no": trade_no(n),
    }


# The shift: file name -> (method, response content). The firmware's script names these files.
ANSWERS = {
    "t1-0001-pay-success.json": pay_success("T1-0001", "25.00", 1, "10:00:07"),
    "t1-0002-pay-inprocess.json": pay_inprocess("T1-0002", "88.80", 2),
    "t1-0002-query-wait.json": query("T1-0002", "88.80", 2, "WAIT_BUYER_PAY"),
    "t1-0002-query-success.json": query("T1-0002", "88.80", 2, "TRADE_SUCCESS"),
    "t1-0003-pay-inprocess.json": pay_inprocess("T1-0003", "12.00", 3),
    "t1-0003-query-wait.json": query("T1-0003", "12.00", 3, "WAIT_BUYER_PAY"),
    "t1-0003-close-ok.json": close_ok("T1-0003", 3),
    "t1-0004-pay-inprocess.json": pay_inprocess("T1-0004", "45.50", 4),
    "t1-0004-close-refused.json": close_refused("T1-0004", 4),
    "t1-0004-query-success.json": query("T1-0004", "45.50", 4, "TRADE_SUCCESS"),
    "t1-0004-refund-full.json": refund("T1-0004", 4, "45.50", "10:03:00"),
    "t1-0005-pay-success.json": pay_success("T1-0005", "199.00", 5, "10:01:46"),
    "t1-0005-refund-partial.json": refund("T1-0005", 5, "50.00", "10:02:50"),
    "t1-0006-pay-inprocess.json": pay_inprocess("T1-0006", "66.00", 6),
    "t1-0006-query-success.json": query("T1-0006", "66.00", 6, "TRADE_SUCCESS"),
}


def content_text(content):
    # Compact, in the order given, UTF-8 as sent: the exact bytes that are signed.
    return json.dumps(content, separators=(",", ":"), ensure_ascii=False)


def response(method, content_json, sign):
    key = method.replace(".", "_") + "_response"
    return '{"%s":%s,"sign":"%s"}' % (key, content_json, sign)


def main():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key()
    spki = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (HERE / "alipay-public-key.txt").write_text(base64.b64encode(spki).decode() + "\n")

    def sign(text):
        raw = key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(raw).decode()

    def check(text, sign_b64):
        try:
            public.verify(
                base64.b64decode(sign_b64), text.encode(), padding.PKCS1v15(), hashes.SHA256()
            )
            return True
        except InvalidSignature:
            return False

    for name, (method, content) in ANSWERS.items():
        text = content_text(content)
        s = sign(text)
        assert check(text, s)
        (HERE / name).write_text(response(method, text, s))

    # A forged answer: the genuine "still waiting" query of T1-0006 with its status edited to
    # TRADE_SUCCESS, keeping the genuine signature. Verification must refuse it.
    method, content = query("T1-0006", "66.00", 6, "WAIT_BUYER_PAY")
    genuine = content_text(content)
    s = sign(genuine)
    forged = genuine.replace("WAIT_BUYER_PAY", "TRADE_SUCCESS").replace(
        '"buyer_pay_amount":"0.00"', '"buyer_pay_amount":"66.00"'
    )
    assert forged != genuine and not check(forged, s)
    (HERE / "t1-0006-query-success-forged.json").write_text(response(method, forged, s))

    # A truncated answer: the genuine success answer cut off in the middle of its content (a
    # dropped connection), before the signature.
    full = (HERE / "t1-0006-query-success.json").read_text()
    cut = full.index('"trade_status"')
    (HERE / "t1-0006-query-success-truncated.json").write_text(full[:cut])


if __name__ == "__main__":
    main()
