"""Chinese and English text for the shopper pages, and how a request picks its language.

Order of precedence: ``?lang=`` (the switch link), then the phone's Accept-Language, then the
configured default. The catalogue is plain data so a missing translation fails a test, not a
shopper.
"""

from __future__ import annotations

__all__ = ["LANGS", "CATALOGUE", "choose_lang", "translate"]

LANGS = ("zh", "en")

#: key -> (Chinese, English)
CATALOGUE: dict[str, tuple[str, str]] = {
    "app_name": ("菜市场溯源支付", "Market trace & pay"),
    "switch_lang": ("English", "中文"),
    "receipt": ("收据", "Receipt"),
    "pay_title": ("确认付款", "Confirm payment"),
    "trace_title": ("溯源", "Trace"),
    "stall_title": ("摊位", "Stall"),
    "scan_title": ("扫码", "Scan"),
    "status": ("状态", "Status"),
    "status_created": ("待付款", "Awaiting payment"),
    "status_pending": ("待付款", "Awaiting payment"),
    "status_paid": ("已付款", "Paid"),
    "status_failed": ("付款失败", "Payment failed"),
    "status_expired": ("已过期", "Expired"),
    "status_refunded": ("已退款", "Refunded"),
    "status_partially_refunded": ("部分退款", "Partly refunded"),
    "status_unknown": ("未知", "Unknown"),
    "amount": ("金额", "Amount"),
    "merchant": ("商户", "Merchant"),
    "items": ("商品", "Items"),
    "item": ("商品", "Item"),
    "weight": ("重量", "Weight"),
    "quantity": ("数量", "Qty"),
    "unit_price": ("单价", "Unit price"),
    "origin": ("产地", "Origin"),
    "lot": ("批次", "Lot"),
    "paid_at": ("付款时间", "Paid at"),
    "trace_code": ("溯源码", "Trace code"),
    "view_trace": ("查看溯源", "View the trace"),
    "pay_button": ("去付款", "Pay"),
    "pay_hint": ("付款前请核对商品和产地。", "Check the items and where they came from before paying."),
    "already_paid": ("此订单已付款。", "This order is already paid."),
    "not_payable": ("此订单不能再付款。", "This order can no longer be paid."),
    "trace_pending": ("交易正在上链，稍后刷新即可查看溯源。",
                      "The sale is being recorded on the ledger; refresh in a moment for its trace."),
    "no_items": ("商品明细尚未到达。", "The item list has not arrived yet."),
    "timeline": ("来源", "Where it came from"),
    "stage_production_base": ("生产基地", "Farm"),
    "stage_wholesale_market": ("批发市场", "Wholesale"),
    "stage_retail_market": ("零售摊位", "Stall"),
    "stage_unknown": ("环节", "Step"),
    "rapid_tests": ("快检", "Rapid tests"),
    "test_pass": ("合格", "Pass"),
    "test_fail": ("不合格", "Fail"),
    "no_tests": ("暂无快检记录", "No rapid test on record"),
    "record": ("交易记录", "Record"),
    "block": ("区块", "Block"),
    "height": ("高度", "Height"),
    "block_hash": ("区块哈希", "Block hash"),
    "merkle_root": ("默克尔根", "Merkle root"),
    "leaf_index": ("叶序号", "Leaf index"),
    "signatures": ("签名", "Signatures"),
    "verify_checking": ("正在本机验证…", "Checking on this phone…"),
    "verify_ok": ("已验证", "Verified"),
    "verify_ok_detail": ("记录在已签名区块中，未被篡改。",
                         "The record is in a signed block and has not been changed."),
    "verify_bad": ("已被篡改", "Tampered"),
    "verify_bad_detail": ("记录或其证明与账本不符，请勿信任此溯源。",
                          "The record or its proof does not match the ledger. Do not trust this trace."),
    "verify_unavailable": ("无法验证", "Cannot verify"),
    "verify_unavailable_detail": ("此浏览器不支持验证（需要 HTTPS 与 Ed25519）。",
                                  "This browser cannot check the proof (needs HTTPS and Ed25519)."),
    "verify_none": ("暂无上链证明", "No ledger proof yet"),
    "verify_unproven": ("未能验证", "Not verified"),
    "verify_unproven_detail": ("此溯源中有内容无法证明，请勿以此为据。",
                               "Part of this trace cannot be proven. Do not rely on it."),
    "verify_unpinned": ("本站未配置受信任的账本公钥，本页未做任何验证。",
                        "No pinned ledger keys are set up for this site: nothing on this page "
                        "was checked."),
    "verify_noscript": ("需要开启 JavaScript 才能在本机验证。",
                        "Turn on JavaScript to check the proof on this phone."),
    "recall": ("召回警告", "Recall warning"),
    "recall_detail": ("以下批次已被检测为不合格并召回，请勿食用，可凭收据退换。",
                      "These lots failed inspection and are recalled. Do not eat; return with this receipt."),
    "stock_today": ("今日在售", "On sale today"),
    "stall_origins": ("查看本摊位今日货源与产地", "This stall's goods today and which farms they came from"),
    "no_stock": ("今日暂无库存记录。", "No stock on record today."),
    "stall_qr_hint": ("扫码查看本摊位今日商品及产地。",
                      "Scan to see this stall's goods today and where they came from."),
    "scan_hint": ("将二维码对准取景框。", "Point the camera at a QR code."),
    "scan_start": ("打开相机", "Start camera"),
    "scan_no_camera": ("无法打开相机，请使用手机自带相机扫码。",
                       "The camera cannot be opened here; use the phone's own camera app."),
    "scan_found": ("已识别：", "Found:"),
    "scan_open": ("打开", "Open"),
    "scan_foreign": ("这不是本市场的二维码，打开前请确认网址。",
                     "This is not a code of this market: check the address before opening it."),
    "scan_enter": ("或输入溯源码", "Or type a trace code"),
    "go": ("查看", "Go"),
    "not_found_title": ("找不到", "Not found"),
    "not_found_trace": ("没有这个溯源码的记录。请核对收据上的溯源码。",
                        "There is no record for this trace code. Check the code on the receipt."),
    "not_found_payment": ("没有这笔付款。", "There is no such payment."),
    "not_found_stall": ("没有这个摊位。", "There is no such stall."),
    "not_found_page": ("没有这个页面。", "There is no such page."),
    "bad_request_title": ("无效的请求", "Invalid request"),
    "unavailable_title": ("暂时无法连接", "Temporarily unavailable"),
    "unavailable_detail": ("市场网络不稳定，请稍后刷新。", "The market network is unsteady; refresh in a moment."),
    "retry": ("刷新", "Refresh"),
    "back_home": ("扫码", "Scan a code"),
    "date": ("日期", "Date"),
    "drawn": ("本单取自此批", "in this purchase"),
    "place": ("地点", "Place"),
    "buyer": ("买方", "Buyer"),
    "supplier": ("进货自", "Bought from"),
}


def translate(key: str, lang: str) -> str:
    """The text of ``key`` in ``lang``; an unknown key raises KeyError (caught by tests)."""
    zh, en = CATALOGUE[key]
    return en if lang == "en" else zh


def choose_lang(query_lang: str | None, accept_language: str | None, default: str = "zh") -> str:
    """``?lang=`` wins, then the first Accept-Language range we speak (by q), then default."""
    if query_lang:
        primary = query_lang.strip().lower().split("-")[0]
        if primary in LANGS:
            return primary
    best: tuple[float, int, str] | None = None
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                continue
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGS and quality > 0:
            candidate = (-quality, position, primary)
            if best is None or candidate < best:
                best = candidate
    if best is not None:
        return best[2]
    return default if default in LANGS else LANGS[0]
