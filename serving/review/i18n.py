"""Every text of the review UI in Vietnamese (the default) and English, and the number, money and
date formats of each language."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

LANGS = ("vi", "en")
LOCAL = timedelta(hours=7)  # the store keeps UTC; officers read local time (UTC+7)

TEXTS: dict[str, tuple[str, str]] = {
    "app": ("claimradar · Giám định", "claimradar · Review"),
    "login": ("Đăng nhập", "Sign in"),
    "logout": ("Đăng xuất", "Sign out"),
    "username": ("Tên đăng nhập", "User name"),
    "password": ("Mật khẩu", "Password"),
    "login_bad": ("Sai tên đăng nhập hoặc mật khẩu.", "Wrong user name or password."),
    "login_wait": (
        "Quá nhiều lần đăng nhập sai từ địa chỉ này. Vui lòng đợi một lát rồi thử lại.",
        "Too many failed sign-ins from this address. Wait a moment and try again.",
    ),
    "bad_request": ("Yêu cầu không hợp lệ.", "The request is not valid."),
    "too_large": ("Dữ liệu gửi lên quá lớn.", "What was sent is too large."),
    "login_locked": (
        "Tài khoản tạm khóa do nhập sai nhiều lần. Thử lại sau hoặc liên hệ quản trị.",
        "The account is locked after repeated failures. Try later or ask an administrator.",
    ),
    "login_intro": (
        "Hệ thống hỗ trợ giám định hồ sơ đề nghị thanh toán BHYT.",
        "Decision support for verifying health-insurance claims.",
    ),
    "csrf_failed": (
        "Phiên làm việc đã hết hạn hoặc biểu mẫu không hợp lệ. Vui lòng thử lại.",
        "The session expired or the form is not valid. Please try again.",
    ),
    "queue": ("Danh sách hồ sơ", "Queue"),
    "approvals": ("Chờ phê duyệt", "Approvals"),
    "audit": ("Nhật ký", "Audit trail"),
    "users": ("Người dùng", "Users"),
    "role": ("Vai trò", "Role"),
    "role_officer": ("Giám định viên", "Officer"),
    "role_supervisor": ("Lãnh đạo phòng", "Supervisor"),
    "role_admin": ("Quản trị", "Administrator"),
    "take_next": ("Nhận hồ sơ tiếp theo", "Take next case"),
    "take_case": ("Nhận hồ sơ này", "Take this case"),
    "no_next": ("Không còn hồ sơ chưa giao.", "No unassigned case left."),
    "filter": ("Lọc", "Filter"),
    "clear": ("Xóa lọc", "Clear"),
    "any": ("Tất cả", "Any"),
    "facility": ("Cơ sở KCB", "Facility"),
    "level": ("Tuyến", "Level"),
    "month": ("Tháng", "Month"),
    "band": ("Mức rủi ro", "Band"),
    "rule": ("Quy tắc", "Rule"),
    "reason": ("Lý do", "Reason"),
    "status": ("Trạng thái", "Status"),
    "assignee": ("Người giám định", "Assignee"),
    "assignee_short": ("Phụ trách", "Owner"),
    "me": ("Của tôi", "Mine"),
    "unassigned": ("Chưa giao", "Unassigned"),
    "cases": ("hồ sơ", "cases"),
    "expected_total": ("Tổng nghi vượt dự kiến", "Expected overbilled, total"),
    "priority_total": ("Tổng số tiền xếp hạng", "Money at stake, total"),
    "expected": ("Nghi vượt dự kiến", "Expected overbilled"),
    "priority": ("Số tiền xếp hạng", "Money at stake"),
    "priority_help": (
        "Xếp theo số tiền xếp hạng: số tiền nghi vượt dự kiến của mô hình (không thấp hơn số tiền "
        "mà quy tắc cố định chứng minh: hồ sơ trùng lặp, dịch vụ đã tính trong giá dịch vụ khác, "
        "ngày giường vượt thời gian điều trị), cộng thêm (theo trọng "
        "số) số tiền của các bằng chứng khác: vi phạm quy tắc, thuốc vượt liều thường dùng, dịch "
        "vụ hiếm khi chỉ định cho bệnh này, chi phí tăng đột biến của cơ sở trong tháng; không "
        "vượt quá số tiền đề nghị quỹ thanh toán.",
        "Ranked by money at stake: the model's expected overbilled amount (never less than what "
        "a fixed rule proves: a duplicate claim, a service already in another's price, bed-days "
        "beyond the stay) plus, weighted, the "
        "money other evidence puts at stake: rule hits, drugs beyond their usual dose, items "
        "rarely billed for the diagnosis, a facility's cost jump this month; never above what "
        "the claim asks from the fund.",
    ),
    "see_all_in_queue": ("Xem tất cả trong danh sách", "See all in the queue"),
    "risk": ("Xác suất", "Risk"),
    "claimed": ("Đề nghị quỹ TT", "Claimed from fund"),
    "claim": ("Hồ sơ", "Claim"),
    "top_reason": ("Lý do chính", "Top reason"),
    "rules": ("Quy tắc vi phạm", "Rule hits"),
    "page": ("Trang", "Page"),
    "of": ("/", "of"),
    "prev": ("Trước", "Previous"),
    "next": ("Sau", "Next"),
    "export_csv": ("Xuất CSV", "Export CSV"),
    "export_xlsx": ("Xuất Excel", "Export Excel"),
    "export_labels": ("Xuất nhãn (labels)", "Export labels"),
    "empty_queue": ("Không có hồ sơ nào theo bộ lọc.", "No case matches the filter."),
    "band_high": ("Cao", "High"),
    "band_review": ("Cần xem", "Review"),
    "band_watch": ("Theo dõi", "Watch"),
    "band_low": ("Thấp", "Low"),
    "st_todo": ("Chưa kết luận", "To do"),
    "st_open": ("Mới", "Open"),
    "st_assigned": ("Đang giám định", "Assigned"),
    "st_pending_approval": ("Chờ phê duyệt", "Pending approval"),
    "st_decided": ("Đã kết luận", "Decided"),
    "st_all": ("Tất cả", "All"),
    "ds_final": ("Chính thức", "Final"),
    "ds_pending_approval": ("Chờ phê duyệt", "Pending approval"),
    "ds_returned": ("Trả lại", "Returned"),
    "store_down": (
        "Kho hồ sơ tạm thời không truy cập được. Vui lòng thử lại sau ít giây.",
        "The case store cannot be reached at the moment. Please try again in a few seconds.",
    ),
    "ds_superseded": ("Hồ sơ đã gửi lại", "Superseded by a resubmission"),
    "claim_version": ("Lần gửi", "Submission"),
    "case": ("Hồ sơ giám định", "Case"),
    "summary": ("Thông tin chung", "Claim summary"),
    "patient": ("Người bệnh", "Patient"),
    "card": ("Số thẻ BHYT", "Insurance card"),
    "national_id": ("Số CCCD", "National ID"),
    "patient_id": ("Mã người bệnh", "Patient ID"),
    "record_number": ("Số bệnh án", "Record number"),
    "masked_note": (
        "Thông tin định danh được che; chỉ lãnh đạo phòng xem đầy đủ.",
        "Identifiers are masked; only supervisors see them in full.",
    ),
    "sex": ("Giới tính", "Sex"),
    "sex_1": ("Nam", "Male"),
    "sex_2": ("Nữ", "Female"),
    "sex_3": ("Chưa xác định", "Undetermined"),
    "birth_year": ("Năm sinh", "Birth year"),
    "visit_type": ("Loại KCB", "Visit type"),
    "admitted": ("Vào viện", "Admitted"),
    "discharged": ("Ra viện", "Discharged"),
    "treatment_days": ("Số ngày điều trị", "Treatment days"),
    "diagnosis": ("Chẩn đoán", "Diagnosis"),
    "secondary_icd": ("Bệnh kèm theo", "Secondary diagnoses"),
    "route": ("Đối tượng/tuyến", "Route"),
    "total_cost": ("Tổng chi phí", "Total cost"),
    "drugs": ("Thuốc", "Drugs"),
    "supplies": ("Vật tư", "Supplies"),
    "copay": ("Cùng chi trả", "Co-payment"),
    "self_pay": ("Người bệnh tự trả", "Self-pay"),
    "model": ("Mô hình", "Model"),
    "lines": ("Chi tiết thuốc, dịch vụ", "Drug and service lines"),
    "line": ("Dòng", "Line"),
    "code": ("Mã", "Code"),
    "name": ("Tên", "Name"),
    "group": ("Nhóm", "Group"),
    "qty": ("Số lượng", "Quantity"),
    "unit_price": ("Đơn giá", "Unit price"),
    "amount": ("Thành tiền", "Amount"),
    "fund": ("Quỹ TT", "Fund"),
    "typical_price": ("Giá phổ biến", "Typical price"),
    "ordered_at": ("Y lệnh", "Ordered"),
    "marked": ("Dòng ảnh hưởng điểm", "Lines driving the score"),
    "marked_help": (
        "Đánh dấu: đơn giá cao hơn giá phổ biến của cùng mã ở cùng tuyến, nhóm chi phí của "
        "các lý do chính, hoặc dòng liên quan quy tắc vi phạm.",
        "Marked: unit price above the item's typical price at the same level, the cost groups of "
        "the top reasons, or lines a rule hit points at.",
    ),
    "why_price": ("giá cao", "high price"),
    "rule_hits": ("Quy tắc vi phạm", "Rule hits"),
    "no_rule_hits": ("Không vi phạm quy tắc nào.", "No rule hit."),
    "at_stake": ("Số tiền liên quan", "At stake"),
    "reasons": ("Lý do mô hình đánh giá rủi ro", "Why the model flags it"),
    "no_reasons": ("Không có giải thích cho hồ sơ này.", "No explanation for this claim."),
    "waterfall": (
        "Đóng góp (SHAP, thang log-odds) của các yếu tố chính vào điểm rủi ro",
        "Contribution (SHAP, log-odds) of the top factors to the risk score",
    ),
    "contrib_sum": ("Tổng đóng góp", "Sum of contributions"),
    "peers": ("So với nhóm tương đồng", "The claim against its peers"),
    "peers_help": (
        "Trung vị nhóm cùng chẩn đoán, loại KCB và tuyến.",
        "Median of claims with the same diagnosis, visit type and facility level.",
    ),
    "value": ("Hồ sơ này", "This claim"),
    "peer_median": ("Trung vị nhóm", "Peer median"),
    "ratio": ("Tỷ lệ", "Ratio"),
    "history": ("Lịch sử KCB gần đây của người bệnh", "Patient's recent history"),
    "no_history": ("Không có lượt KCB khác trong kho.", "No other claim in the store."),
    "facility_page": ("Xem cơ sở KCB", "Facility page"),
    "decision": ("Kết luận giám định", "Decision"),
    "decisions": ("Các kết luận", "Decisions"),
    "outcome": ("Kết luận", "Outcome"),
    "out_accept": ("Chấp nhận thanh toán", "Accept"),
    "out_reject_full": ("Xuất toán toàn bộ", "Reject in full"),
    "out_reject_part": ("Xuất toán một phần", "Reject part"),
    "part_by_amount": ("Theo số tiền", "By amount"),
    "part_by_lines": ("Theo từng dòng", "Line by line"),
    "amount_rejected": ("Số tiền xuất toán", "Amount rejected"),
    "approved_qty": ("SL chấp nhận", "Approved qty"),
    "approved_price": ("Đơn giá chấp nhận", "Approved price"),
    "reason_code": ("Mã lý do", "Reason code"),
    "choose": ("— chọn —", "— choose —"),
    "note": ("Ghi chú", "Note"),
    "save_decision": ("Lưu kết luận", "Record decision"),
    "threshold_note": (
        "Kết luận xuất toán trên {amount} và kết luận chấp nhận hồ sơ nguy cơ cao phải được "
        "lãnh đạo phòng phê duyệt.",
        "Rejections above {amount} and accepts of high-band claims wait for a supervisor's "
        "approval.",
    ),
    "decided_ok": ("Đã lưu kết luận.", "Decision recorded."),
    "decided_pending": (
        "Đã lưu kết luận; đang chờ lãnh đạo phòng phê duyệt.",
        "Decision recorded; it waits for a supervisor's approval.",
    ),
    "conflict": (
        "Hồ sơ vừa được {who} thay đổi (trạng thái: {status}). Kết luận của bạn CHƯA được lưu; "
        "nội dung bạn nhập vẫn giữ nguyên bên dưới. Hãy xem lại rồi lưu lại nếu vẫn cần.",
        "The case was just changed by {who} (status: {status}). Your decision was NOT saved; "
        "what you entered is kept below. Review it and save again if still needed.",
    ),
    "someone": ("người khác", "someone else"),
    "your_input": ("Nội dung bạn đã nhập (chưa lưu)", "Your input (not saved)"),
    "err_outcome": ("Chọn một kết luận.", "Choose an outcome."),
    "err_reason_code": (
        "Chọn mã lý do phù hợp với kết luận.",
        "Choose a reason code that fits the outcome.",
    ),
    "err_note_required": ("Cần ghi chú cho lựa chọn này.", "A note is required here."),
    "err_amount": (
        "Số tiền phải lớn hơn 0 và không vượt số đề nghị thanh toán.",
        "The amount must be above 0 and at most the amount claimed.",
    ),
    "err_line_qty": (
        "Số lượng chấp nhận từ 0 đến số lượng đề nghị.",
        "Approved quantity: 0 to the quantity claimed.",
    ),
    "err_line_price": (
        "Đơn giá chấp nhận từ 0 đến đơn giá đề nghị.",
        "Approved price: 0 to the price claimed.",
    ),
    "err_no_line_change": (
        "Chưa điều chỉnh dòng nào: nhập số lượng hoặc đơn giá chấp nhận.",
        "No line changed: enter an approved quantity or price.",
    ),
    "err_not_decidable": (
        "Hồ sơ không ở trạng thái có thể kết luận.",
        "The case cannot be decided in its current state.",
    ),
    "err_not_yours": (
        "Hồ sơ chưa được giao cho bạn: hãy nhận hồ sơ trước (hoặc hồ sơ đã giao cho người khác).",
        "The case is not assigned to you: take it first (or it is assigned to another officer).",
    ),
    "err_self_approval": (
        "Không thể tự phê duyệt kết luận của chính mình.",
        "You cannot approve your own decision.",
    ),
    "err_forbidden": ("Bạn không có quyền thực hiện thao tác này.", "You may not do this."),
    "form_errors": ("Vui lòng sửa các lỗi được đánh dấu.", "Please correct the marked fields."),
    "approve": ("Phê duyệt", "Approve"),
    "return": ("Trả lại", "Return"),
    "supervisor_note": ("Ý kiến lãnh đạo", "Supervisor's note"),
    "approved_ok": ("Đã phê duyệt kết luận.", "Decision approved."),
    "returned_ok": ("Đã trả lại cho giám định viên.", "Returned to the officer."),
    "no_pending": ("Không có kết luận chờ phê duyệt.", "No decision waits for approval."),
    "by": ("bởi", "by"),
    "officer": ("Giám định viên", "Officer"),
    "supervisor": ("Lãnh đạo", "Supervisor"),
    "when": ("Thời gian", "When"),
    "who": ("Người thực hiện", "Who"),
    "action": ("Thao tác", "Action"),
    "entity": ("Đối tượng", "Entity"),
    "before": ("Trước", "Before"),
    "after": ("Sau", "After"),
    "case_audit": ("Nhật ký hồ sơ", "Case audit trail"),
    "full_audit": ("Xem toàn bộ", "Full trail"),
    "profile": ("Thông tin cơ sở", "Profile"),
    "claims_scored": ("Hồ sơ đã chấm điểm", "Claims scored"),
    "open_cases": ("Hồ sơ đang mở", "Open cases"),
    "rejected_total": ("Đã xuất toán", "Rejected so far"),
    "trend": (
        "Chi phí bình quân một lượt KCB theo tháng so với cơ sở cùng tuyến",
        "Monthly cost per visit against same-level facilities",
    ),
    "this_facility": ("Cơ sở này", "This facility"),
    "peers_level": ("Trung vị cùng tuyến", "Same-level median"),
    "early_warning": ("Cảnh báo sớm", "Early warning"),
    "ew_on": (
        "CẢNH BÁO: chi phí bình quân tăng bất thường so với xu hướng và cơ sở cùng tuyến "
        "({month}).",
        "WARNING: cost per visit grows abnormally against its trend and same-level peers "
        "({month}).",
    ),
    "ew_off": ("Không có cảnh báo ({month}).", "No warning ({month})."),
    "ew_change": (
        "Chi phí/lượt thay đổi so với chính cơ sở",
        "Change in cost per visit vs its own baseline",
    ),
    "ew_mix": ("cơ cấu bệnh", "case mix"),
    "ew_price": ("giá", "price"),
    "ew_volume": ("số lượng", "volume"),
    "ew_evidence": ("Nhóm bệnh × loại KCB tăng", "Cells that moved"),
    "ew_none": ("Chưa có dữ liệu cảnh báo.", "No early-warning data yet."),
    "growth": ("Tăng so với xu hướng", "Growth vs trend"),
    "peer_growth": ("Trung vị cùng tuyến", "Same-level median"),
    "excess": ("Vượt", "Excess"),
    "claims": ("Số lượt", "Claims"),
    "cost_per_visit": ("Chi phí/lượt", "Cost per visit"),
    "warning": ("Cảnh báo", "Warning"),
    "yes": ("Có", "Yes"),
    "no": ("Không", "No"),
    "back_to_queue": ("← Danh sách hồ sơ", "← Back to the queue"),
    "create_user": ("Tạo người dùng", "Create user"),
    "unlock": ("Mở khóa", "Unlock"),
    "deactivate": ("Vô hiệu hóa", "Deactivate"),
    "activate": ("Kích hoạt", "Activate"),
    "active": ("Hoạt động", "Active"),
    "locked_until": ("Khóa đến", "Locked until"),
    "user_created": ("Đã tạo người dùng.", "User created."),
    "not_found": ("Không tìm thấy.", "Not found."),
    "forbidden": ("Bạn không có quyền xem trang này.", "You may not open this page."),
    "lang_other": ("English", "Tiếng Việt"),
    "history_case": ("Hồ sơ", "Case"),
    "claim_id": ("Mã lượt KCB (MA_LK)", "Claim ID (MA_LK)"),
    "opened": ("Mở lúc", "Opened"),
    "version": ("Phiên bản", "Version"),
    "all_events": ("sự kiện", "events"),
    "dash": ("—", "—"),
    # the supervisors' dashboard (issue 16)
    "dashboard": ("Tổng quan", "Dashboard"),
    "dashboard_help": (
        "Kết quả giám định theo tháng và mức rủi ro, so với kỳ vọng của mô hình.",
        "What the review found by month and band, against what the model expected.",
    ),
    "cases_opened": ("Hồ sơ đã mở", "Cases opened"),
    "decided": ("Đã kết luận", "Decided"),
    "hit_rate": ("Tỷ lệ phát hiện", "Hit rate"),
    "expected_hit_rate": ("Tỷ lệ phát hiện kỳ vọng", "Expected hit rate"),
    "expected_short": ("kỳ vọng", "expected"),
    "money_rejected": ("Số tiền xuất toán", "Money rejected"),
    "expected_decided": ("Nghi vượt dự kiến (đã kết luận)", "Expected overbilled (decided)"),
    "days_to_decision": ("Số ngày đến kết luận (trung vị)", "Days to decision (median)"),
    "money_by_month": ("Số tiền xuất toán theo tháng", "Money recovered by month"),
    "hit_by_month": (
        "Tỷ lệ phát hiện theo tháng: thực tế và kỳ vọng từ xác suất đã hiệu chỉnh",
        "Hit rate by month: realised, and expected from the calibrated probabilities",
    ),
    "by_month_band": ("Theo tháng và mức rủi ro", "By month and band"),
    "top_facilities": ("Cơ sở KCB bị xuất toán nhiều nhất", "Facilities with most money rejected"),
    "officers_throughput": ("Năng suất giám định viên", "Officers' throughput"),
    "no_cases_yet": ("Chưa có hồ sơ.", "No case yet."),
    "no_rejections_yet": ("Chưa có kết luận xuất toán.", "No money rejected yet."),
    "models_in_service": ("Mô hình đang dùng", "Models in service"),
    "champion": ("Chính thức (champion)", "Champion"),
    "challenger": ("Thử nghiệm (challenger)", "Challenger"),
    "models_unknown": ("Không đọc được kho mô hình.", "The model registry cannot be read."),
    "drift_alerts": ("Cảnh báo thay đổi dữ liệu", "Drift alerts"),
    "monitoring_of": (
        "Báo cáo giám sát tháng {month}, mô hình v{version}.",
        "Monitoring report of {month}, model v{version}.",
    ),
    "no_monitoring": (
        "Chưa có báo cáo giám sát (claimradar monitor).",
        "No monitoring report yet (claimradar monitor).",
    ),
    "no_drift_alerts": ("Không có cảnh báo.", "No alert."),
    "alert_feature_drift": ("Dữ liệu đầu vào thay đổi", "Input drift"),
    "alert_score_drift": ("Điểm rủi ro thay đổi", "Score drift"),
    "alert_band_drift": ("Tỷ lệ theo mức rủi ro thay đổi", "Band drift"),
    "alert_rule_share": ("Tỷ lệ vi phạm quy tắc thay đổi", "Rule share change"),
    "alert_rejection_rate": ("Nhiều hồ sơ bị từ chối tiếp nhận", "Many claims refused"),
    "alert_facility_rejections": (
        "Cơ sở có nhiều hồ sơ bị từ chối tiếp nhận",
        "Facilities with many refused claims",
    ),
}

ACTIONS = {
    "open": ("mở hồ sơ", "opened"),
    "assign": ("nhận hồ sơ", "took the case"),
    "decide": ("kết luận", "decided"),
    "approve": ("phê duyệt", "approved"),
    "return": ("trả lại", "returned"),
    "resubmit": ("cơ sở gửi lại hồ sơ", "claim resubmitted"),
    "reopen": ("mở lại (hồ sơ gửi lại)", "re-opened (claim resubmitted)"),
    "login": ("đăng nhập", "signed in"),
    "logout": ("đăng xuất", "signed out"),
    "login_failed": ("đăng nhập sai", "failed sign-in"),
    "login_refused": ("đăng nhập bị từ chối", "sign-in refused"),
    "lock": ("khóa tài khoản", "account locked"),
    "unlock": ("mở khóa", "unlocked"),
    "create": ("tạo", "created"),
    "export": ("xuất dữ liệu", "exported"),
}

GROUPS = {
    "lab": ("Xét nghiệm", "Lab"),
    "imaging": ("CĐHA", "Imaging"),
    "functional": ("Thăm dò CN", "Functional"),
    "drug": ("Thuốc", "Drug"),
    "blood": ("Máu", "Blood"),
    "surgery": ("Phẫu thuật", "Surgery"),
    "ratio_service": ("DV tỷ lệ", "Ratio service"),
    "supply": ("Vật tư", "Supply"),
    "transport": ("Vận chuyển", "Transport"),
    "exam": ("Khám", "Exam"),
    "bed": ("Giường", "Bed"),
    "procedure": ("Thủ thuật", "Procedure"),
    "other": ("Khác", "Other"),
}

VISIT_TYPES_VI = {
    "01": "Khám bệnh",
    "02": "Điều trị ngoại trú",
    "03": "Điều trị nội trú",
    "04": "Nội trú ban ngày",
    "05": "Ngoại trú bệnh mạn tính (thuốc)",
    "06": "Lưu tại trạm y tế",
    "07": "Nhận thuốc",
    "08": "Ngoại trú bệnh mạn tính (dịch vụ)",
    "09": "Nội trú dưới 4 giờ",
    "10": "Khác",
}


def text(key: str, lang: str, **kw: Any) -> str:
    vi, en = TEXTS.get(key, (key, key))
    s = vi if lang == "vi" else en
    return s.format(**kw) if kw else s


def _real(x: Any) -> float | None:
    """A number to show, or None (missing, NaN, or a field the claim's document lacks)."""
    from jinja2 import Undefined

    if x is None or isinstance(x, Undefined):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if v == v else None


def num(x: Any, lang: str, digits: int = 0) -> str:
    v = _real(x)
    if v is None:
        return "—"
    s = f"{v:,.{digits}f}"
    if lang == "vi":
        s = s.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    return s


def money(x: Any, lang: str) -> str:
    if _real(x) is None:
        return "—"
    return num(x, lang) + (" đ" if lang == "vi" else " VND")


def pct(x: Any, lang: str, digits: int = 0) -> str:
    v = _real(x)
    if v is None:
        return "—"
    return num(100 * v, lang, digits) + " %"


def when(x: Any, lang: str, utc: bool = True) -> str:
    """A stored time (UTC, or local when `utc` is False) as local time."""
    if x is None or x == "":
        return "—"
    if isinstance(x, str):
        try:
            x = datetime.fromisoformat(x)
        except ValueError:
            return x
    if not isinstance(x, datetime):  # a field the claim's document lacks
        return "—"
    if utc:
        x = x + LOCAL
    return x.strftime("%d/%m/%Y %H:%M" if lang == "vi" else "%Y-%m-%d %H:%M")
