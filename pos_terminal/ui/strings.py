"""Every word the terminal's screens show, in one table, so a language switch is one lookup.

Screens never hold literal text: they ask ``text(key, lang)``. A test checks that every key
has every language, so a missing translation fails the build rather than a vendor's day.
"""

from __future__ import annotations

__all__ = ["LANGUAGES", "STRINGS", "text", "unit_label", "next_language"]

LANGUAGES: tuple[str, ...] = ("zh", "en")

STRINGS: dict[str, dict[str, str]] = {
    "app_title": {"zh": "溯源收银", "en": "tracepay"},
    "charge": {"zh": "收款", "en": "Charge"},
    "cash": {"zh": "现金", "en": "Cash"},
    "cash_paid": {"zh": "现金收款 {amount}", "en": "Paid in cash {amount}"},
    "cash_change": {"zh": "现金收款 {amount}  找零 {change}",
                    "en": "Paid in cash {amount}  change {change}"},
    "print": {"zh": "打印", "en": "Print"},
    "printed": {"zh": "已打印", "en": "Printed"},
    "print_failed": {"zh": "打印失败: {reason}", "en": "Cannot print: {reason}"},
    "clear": {"zh": "清空", "en": "Clear"},
    "delete": {"zh": "删除", "en": "Delete"},
    "edit": {"zh": "修改", "en": "Edit"},
    "edit_prices": {"zh": "改价", "en": "Prices"},
    "done": {"zh": "完成", "en": "Done"},
    "total": {"zh": "合计", "en": "Total"},
    "cart_empty": {"zh": "请选择商品", "en": "Pick an item"},
    "mode_weight": {"zh": "重量(克)", "en": "Weight g"},
    "mode_quantity": {"zh": "数量", "en": "Qty"},
    "mode_price": {"zh": "单价(元)", "en": "Price ¥"},
    "language": {"zh": "English", "en": "中文"},
    "per_kg": {"zh": "/公斤", "en": "/kg"},
    "per_500g": {"zh": "/斤", "en": "/500 g"},
    "per_jin": {"zh": "/斤", "en": "/jin"},
    "per_g": {"zh": "/克", "en": "/g"},
    "per_piece": {"zh": "/个", "en": "/pc"},
    "grams": {"zh": "克", "en": "g"},
    "pieces": {"zh": "个", "en": "pc"},
    "outbox": {"zh": "待传 {queued} · 已传 {sent}", "en": "Queued {queued} · Sent {sent}"},
    "sales": {"zh": "今日销售", "en": "Today"},
    "back": {"zh": "返回", "en": "Back"},
    "void": {"zh": "作废", "en": "Void"},
    "refund": {"zh": "退款", "en": "Refund"},
    "z_report": {"zh": "日结", "en": "Z report"},
    "save_png": {"zh": "保存图片", "en": "Save PNG"},
    "saved_to": {"zh": "已保存: {path}", "en": "Saved: {path}"},
    "unsent_warning": {"zh": "还有 {count} 笔未上传", "en": "{count} sales not sent yet"},
    "reason_wrong_item": {"zh": "货品有误", "en": "wrong item"},
    "reason_quality": {"zh": "质量问题", "en": "quality"},
    "need_sale": {"zh": "请先选中一笔", "en": "Select a sale first"},
    "refund_failed": {"zh": "退款未成: {reason}", "en": "Refund not done: {reason}"},
    "void_failed": {"zh": "不能作废: {reason}", "en": "Cannot void: {reason}"},
    "z_title": {"zh": "日结报表 {day}", "en": "Z report {day}"},
    "z_merchant": {"zh": "商户", "en": "Merchant"},
    "z_device": {"zh": "终端", "en": "Terminal"},
    "z_unsent": {"zh": "未上传", "en": "Not sent"},
    "refund_requested": {"zh": "已申请退款", "en": "Refund requested"},
    "voided": {"zh": "已作废", "en": "Voided"},
    "cancel": {"zh": "取消", "en": "Cancel"},
    "new_sale": {"zh": "下一位", "en": "Next sale"},
    "scale_refused": {"zh": "秤: {reason}", "en": "Scale: {reason}"},
    "scale_zero": {"zh": "归零", "en": "Zero"},
    "scale_tare": {"zh": "去皮", "en": "Tare"},
    "scale_weight": {"zh": "秤 {grams} 克", "en": "Scale {grams} g"},
    "scale_moving": {"zh": "秤 {grams} 克 …", "en": "Scale {grams} g …"},
    "need_weight": {"zh": "请输入重量", "en": "Enter a weight"},
    "need_line": {"zh": "请先选中一行", "en": "Select a line first"},
    "bad_number": {"zh": "数字无效", "en": "Not a valid number"},
    "nothing_to_charge": {"zh": "购物车为空", "en": "The cart is empty"},
    "charge_failed": {"zh": "收款失败: {reason}", "en": "Cannot charge: {reason}"},
    "price_set": {"zh": "{name} 新价 {price}", "en": "{name} now {price}"},
    "welcome": {"zh": "欢迎光临", "en": "Welcome"},
    "scan_to_pay": {"zh": "请扫码付款", "en": "Scan to pay"},
    "waiting": {"zh": "等待付款…", "en": "Waiting for payment…"},
    "paid": {"zh": "付款成功", "en": "Paid"},
    "failed": {"zh": "付款失败", "en": "Payment failed"},
    "expired": {"zh": "二维码已过期", "en": "QR code expired"},
    "cancelled": {"zh": "已取消", "en": "Cancelled"},
    "trace_code": {"zh": "溯源码 {code}", "en": "Trace code {code}"},
    "expires_in": {"zh": "{seconds} 秒后过期", "en": "Expires in {seconds} s"},
    "status_open": {"zh": "待付", "en": "Unpaid"},
    "status_paid": {"zh": "已付", "en": "Paid"},
    "status_void": {"zh": "作废", "en": "Void"},
    "status_failed": {"zh": "失败", "en": "Failed"},
    "status_expired": {"zh": "过期", "en": "Expired"},
    "status_refunded": {"zh": "已退", "en": "Refunded"},
    "status_paid_after_void": {"zh": "作废后已付·请退款", "en": "Paid after void: refund"},
    "z_sales": {"zh": "笔数", "en": "Sales"},
    "z_paid": {"zh": "已付金额", "en": "Paid"},
    "z_unpaid": {"zh": "未付金额", "en": "Unpaid"},
    "z_void": {"zh": "作废笔数", "en": "Voided"},
    "z_refunded": {"zh": "退款金额", "en": "Refunded"},
    "z_paid_after_void": {"zh": "作废后已付（待退款）", "en": "Paid after void (to refund)"},
    "barcode_bad": {"zh": "条码无效: {reason}", "en": "Bad barcode: {reason}"},
    "barcode_not_in_store": {"zh": "不是称重/计价条码: {code}", "en": "Not a weight or price label: {code}"},
    "barcode_unknown_plu": {"zh": "未知商品编号 {plu}", "en": "Unknown item code {plu}"},
    "barcode_weight_on_piece": {"zh": "{name} 按个卖, 条码却是重量", "en": "{name} is sold by the piece, not by weight"},
    "barcode_no_unit_price": {"zh": "{name} 没有单价", "en": "{name} has no unit price"},
    "barcode_added": {"zh": "已扫入 {name}", "en": "Scanned {name}"},
    "reason_short_weight": {"zh": "分量不足", "en": "short weight"},
    "reason_changed_mind": {"zh": "顾客不要了", "en": "changed mind"},
    "refund_title": {"zh": "退款 #{seq}  已付 {paid}  可退 {left}", "en": "Refund #{seq}  paid {paid}  left {left}"},
    "refund_amount": {"zh": "退款金额", "en": "Amount"},
    "refund_all": {"zh": "全部 {amount}", "en": "All {amount}"},
    "refund_other_reason": {"zh": "其他原因(可选)", "en": "Other reason (optional)"},
    "refund_send": {"zh": "确认退款", "en": "Send refund"},
    "refund_not_paid": {"zh": "只能退已付款的销售", "en": "Only a paid sale can be refunded"},
    "refund_bad_amount": {"zh": "退款金额无效", "en": "Not a valid refund amount"},
    "refund_too_much": {"zh": "最多可退 {most}", "en": "At most {most} can be refunded"},
    "refund_need_reason": {"zh": "请选择退款原因", "en": "Choose a reason"},
    "refund_state_sent": {"zh": "退款 {amount} 已提交网关", "en": "Refund {amount} sent to the gateway"},
    "refund_state_queued": {"zh": "退款 {amount} 已排队, 联网后发送", "en": "Refund {amount} queued: sent when online"},
    "refund_state_refused": {"zh": "退款 {amount} 被网关拒绝", "en": "Refund {amount} refused by the gateway"},
    "refund_refunded": {"zh": "已退 {amount}", "en": "Refunded {amount}"},
    "scale_error": {"zh": "秤: 出错了", "en": "Scale: error"},
    "scale_fault": {"zh": "秤故障", "en": "Scale fault"},
    "scale_unstable": {"zh": "秤: 重量还在变动, 请等稳定", "en": "Scale: still moving, wait until it settles"},
    "scale_below_minimum": {"zh": "秤: {grams} 克低于最小称量 {minimum} 克", "en": "Scale: {grams} g is below the minimum of {minimum} g"},
    "scale_under_zero": {"zh": "秤: 读数低于零, 请清空秤盘后归零", "en": "Scale: below zero, empty the platter and zero it"},
    "scale_over_capacity": {"zh": "秤: 超出量程", "en": "Scale: over capacity"},
    "scale_type_first": {"zh": "请先输入重量", "en": "Type the weight first"},
    "scale_typed_no_tare": {"zh": "手输重量不能去皮, 请输入净重", "en": "A typed weight has no tare: type the net weight"},
    "scale_no_answer": {"zh": "秤没有响应: 请检查连线和 8217 模式", "en": "The scale does not answer: check its cable and 8217 mode"},
    "scale_needs_stable": {"zh": "秤: 请等重量稳定再操作", "en": "Scale: wait until the weight settles"},
    "scale_zero_needs_stable": {"zh": "归零需要秤稳定且未去皮", "en": "Zero needs a stable scale and no tare"},
    "scale_far_from_zero": {"zh": "离零点太远: 请先清空秤盘", "en": "Too far from zero: empty the platter first"},
    "scale_nothing_to_tare": {"zh": "秤盘上没有东西可去皮", "en": "Nothing on the platter to tare"},
    "err_total_too_large": {"zh": "金额太大, 请分开收款", "en": "Total too large for one payment: split the sale"},
    "err_too_many_lines": {"zh": "一笔最多 {count} 行", "en": "At most {count} lines per sale"},
    "err_out_of_range": {"zh": "数值须在 {low} 到 {high} 之间", "en": "The number must be {low} to {high}"},
    "err_void_paid": {"zh": "已付款的不能作废, 请退款", "en": "This sale is paid: refund it instead"},
    "err_refund_too_much": {"zh": "最多可退 {amount}", "en": "At most {amount} can be refunded"},
    "price_for": {"zh": "改价 {name} (现 {price}): 输入新价, 再按该键", "en": "New price for {name} (now {price}): type it, tap the key again"},
    "price_for_cancelled": {"zh": "改价已取消", "en": "Price change cancelled"},
    "barcode_not_ean13": {"zh": "条码不是 13 位数字, 请重扫", "en": "Not a 13-digit barcode: scan again"},
    "barcode_check_digit": {"zh": "条码校验位不对, 请重扫", "en": "Barcode check digit wrong: scan again"},
    "barcode_zero_weight": {"zh": "标签上的重量为零", "en": "The label carries a zero weight"},
    "barcode_prefix_unset": {"zh": "店内条码前缀 {prefix} 未设置", "en": "In-store prefix {prefix} is not set up"},
    "enrol_title": {"zh": "首次使用: 终端登记", "en": "First run: enrol this terminal"},
    "enrol_hint": {"zh": "输入或扫描市场管理员给的登记码", "en": "Type or scan the code from the market manager"},
    "enrol_code": {"zh": "登记码", "en": "Code"},
    "enrol_gateway": {"zh": "网关地址", "en": "Gateway"},
    "enrol_submit": {"zh": "登记", "en": "Enrol"},
    "enrol_back": {"zh": "退格", "en": "Del"},
    "enrol_claiming": {"zh": "正在登记…", "en": "Enrolling…"},
    "enrol_done": {"zh": "已登记为 {device}", "en": "Enrolled as {device}"},
    "enrol_need_code": {"zh": "请输入登记码", "en": "Enter the enrolment code"},
    "enrol_need_gateway": {"zh": "请输入网关地址", "en": "Enter the gateway address"},
    "enrol_bad_code": {"zh": "登记码格式不对", "en": "That code looks wrong"},
    "enrol_bad_gateway": {"zh": "网关地址不对", "en": "That gateway address looks wrong"},
    "enrol_too_long": {"zh": "太长了", "en": "Too long"},
    "enrol_unknown_code": {"zh": "登记码错误, 请核对", "en": "Wrong code: check it with the manager"},
    "enrol_code_used": {"zh": "登记码已被使用, 请向管理员要新码", "en": "Code already used: ask the manager for a new one"},
    "enrol_code_expired": {"zh": "登记码已过期, 请向管理员要新码", "en": "Code expired: ask the manager for a new one"},
    "enrol_too_many": {"zh": "尝试太多, 请稍后再试", "en": "Too many tries: wait a minute"},
    "enrol_unreachable": {"zh": "连不上网关, 请检查网络和地址", "en": "Gateway unreachable: check the network and address"},
    "enrol_refused": {"zh": "登记未成: {reason}", "en": "Enrolment refused: {reason}"},
}

_UNIT_KEYS = {"kg": "per_kg", "500g": "per_500g", "jin": "per_jin", "g": "per_g",
              "piece": "per_piece"}


def text(key: str, lang: str, **values: object) -> str:
    """The string ``key`` in ``lang``, with ``{placeholders}`` filled from ``values``.

    An unknown key raises KeyError: a typo should fail a test, not show a blank button.
    """
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; expected one of {LANGUAGES}")
    template = STRINGS[key][lang]
    return template.format(**values) if values else template


def unit_label(unit: str, lang: str) -> str:
    """``'500g'`` -> ``'/斤'`` (zh) or ``'/500 g'`` (en)."""
    return text(_UNIT_KEYS[unit], lang)


def next_language(lang: str) -> str:
    """The language the toggle switches to from ``lang``."""
    return LANGUAGES[(LANGUAGES.index(lang) + 1) % len(LANGUAGES)]
