// Interface strings: zh-CN by default, English on request. The choice is kept in localStorage.
const STRINGS = {
  "zh-CN": {
    app: "共享法庭", login: "工作人员登录", username: "用户名", password: "密码", signin: "登录",
    logout: "退出", hearings: "庭审安排", case: "案件", title: "事项", start: "开始", state: "状态",
    station: "共享法庭站点", join_title: "参加在线庭审", join_checking: "正在核验邀请链接…",
    join_ok: "邀请已确认。请等待法官或书记员允许您进入。", join_missing: "链接不完整，请使用法院发送的完整链接。",
    participants: "参加人", no_hearings: "暂无庭审安排。",
    state_scheduled: "已排期", state_opened: "候庭中", state_in_session: "庭审中", state_recess: "休庭",
    state_suspended: "中止", state_closed: "已结束",
    leave: "离开", identity_title: "身份核验", legal_name: "姓名", id_digits: "身份证号码后四位",
    confirm: "确认", consent_title: "在线诉讼须知", consent_submit: "同意并进入候庭室",
    consent_online: "我同意以在线方式参加本次庭审/调解", consent_rules: "我已阅读并遵守法庭纪律",
    consent_no_recording: "我承诺不录音、录像、截图或传播庭审内容",
    waiting_title: "候庭室", waiting_text: "请稍候，法官或书记员将允许您进入。", you: "我",
    ask_to_speak: "申请发言", muted_by_court: "您已被法庭静音", unmuted: "您已可以发言",
    asks_to_speak: "申请发言", admit_all: "全部准入", mute_all: "全体静音", lock: "锁定",
    do_open: "开放候庭", do_start: "开庭", do_recess: "休庭", do_suspend: "中止（技术故障）",
    do_close: "闭庭", departures: "离开记录", admit: "准入", call_witness: "传唤",
    dismiss_witness: "退庭", to_waiting: "移回候庭室", mute: "静音", unmute: "取消静音",
    spotlight: "焦点", remove: "移出", remove_reason: "违反法庭纪律", reason_prompt: "理由",
    reason_opened: "开放候庭室", reason_in_session: "开庭", reason_recess: "休庭",
    reason_suspended: "技术故障", reason_closed: "闭庭", no_devices: "无法使用摄像头或麦克风",
    enter_room: "进入候庭室", recording_hash_title: "庭审录像完整性校验值",
    confirm_hash: "我已核对并确认", recording_alert: "录像异常", station_reported: "站点报告故障",
    role_plaintiff: "原告", role_defendant: "被告", role_agent: "代理人", role_witness: "证人",
    role_expert: "鉴定人", role_interpreter: "翻译", role_observer: "旁听", role_mediator: "调解员",
    role_judge: "法官", role_clerk: "书记员", role_station: "站点",
    pstate_invited: "未核验", pstate_identity_confirmed: "已核验", pstate_waiting: "候庭",
    pstate_in_hearing: "在庭", pstate_in_private_room: "单独会谈", pstate_disconnected: "已断线",
    pstate_left: "已离开", pstate_removed: "已移出",
    cause_CLIENT_LEFT: "主动离开", cause_REMOVED: "被移出", cause_DISMISSED: "退庭",
    cause_JUDGE_ENDED: "庭审结束", cause_DUPLICATE_SESSION: "在其他设备登录",
    cause_ICE_FAILED: "媒体连接失败", cause_NETWORK_LOST: "网络中断", cause_HEARTBEAT_LOST: "连接超时",
    cause_STATION_POWER: "站点停电", cause_STATION_NETWORK: "站点网络故障",
    cause_WORKER_DIED: "服务器故障", cause_SERVER_SHUTDOWN: "服务器重启",
    cause_PROTOCOL_VIOLATION: "发送消息过多或格式错误，连接已被服务器断开",
    cause_SESSION_REVOKED: "邀请链接已被撤销或重新签发，请使用新的链接进入",
    cause_JOIN_REFUSED: "无法进入该庭审",
    cause_PRODUCER_CLOSED: "对方的音视频已停止", cause_ROOM_CHANGED: "已转入其他房间",
    back: "返回", recordings: "录像", play_recording: "回放录像", recording_on: "录像中", pause_recording: "暂停录像", resume_recording: "恢复录像", pb_title: "庭审录像回放", pb_recordings: "本庭审的录像",
    pb_root_hash: "完整性校验值", pb_signing_key: "签名密钥", pb_status: "封存方式",
    pb_preparing: "正在校验并解密录像…", pb_play: "播放", pb_pause: "暂停", pb_timeline: "签名时间线",
    pb_verdict_intact: "已验证：完整，未被篡改", pb_verdict_gaps: "已验证：完整，含已声明的中断",
    pb_verdict_tampered: "校验失败：录像被篡改或不完整", pb_verdict_error: "无法校验",
    pb_sealed_complete: "正常封存", pb_sealed_recovered: "故障后自动封存", pb_sealed_failed: "磁盘已满时封存",
    pb_state_recording: "录制中", pb_state_complete: "已封存", pb_state_recovered: "故障后封存",
    pb_state_failed: "异常封存", pb_source_court: "法院录像", pb_source_station_backup: "站点本地备份",
    pb_none: "本庭审没有可回放的录像。", pb_failed: "无法准备回放",
    pb_media_NO_PLAYBACK_KEY: "本服务器未配置回放密钥，请由档案密钥持有人导出录像。",
    pb_media_NOT_A_RECIPIENT: "该录像未对回放密钥加密，请由档案密钥持有人导出（shared-court export）。",
    pb_media_VERIFICATION_FAILED: "录像未通过校验，不予解密播放。", pb_media_NO_MEDIA: "该录像没有音视频内容。",
    pb_ev_recording_started: "开始录制", pb_ev_recording_stopped: "停止录制", pb_ev_resumed: "恢复录制",
    pb_ev_paused: "暂停录制", pb_ev_joined: "加入", pb_ev_left: "离开", pb_ev_media: "音视频开始",
    pb_ev_gap: "网络中断", pb_ev_incident: "故障", pb_ev_note: "备注",
    pb_reason_RECESS: "休庭", pb_reason_NON_PUBLIC_EVIDENCE: "不公开质证", pb_reason_MEDIATION_OFF_RECORD: "调解不录",
    // Every error code the server or the page's own signaling can report, as a sentence.
    err_BAD_JSON: "页面发送的数据有误，请刷新页面后重试。", err_BAD_REQUEST: "请求有误，请刷新页面后重试。",
    err_UNSUPPORTED_VERSION: "页面版本过旧，请刷新页面。", err_UNKNOWN_TYPE: "页面版本过旧，请刷新页面。",
    err_UNKNOWN_FIELD: "页面版本过旧，请刷新页面。", err_MISSING_FIELD: "有必填项未填写。",
    err_BAD_FIELD: "填写的内容不符合要求，请检查后再试。", err_TOO_LARGE: "内容过长，请删减后再试。",
    err_UNAUTHORIZED: "登录已失效，请重新登录。", err_FORBIDDEN: "您没有进行此项操作的权限。",
    err_NOT_FOUND: "找不到该内容，可能已被删除或不属于您的法院。",
    err_WRONG_STATE: "当前状态下不能进行此项操作，请刷新后查看最新状态。",
    err_CONFLICT: "该内容已被他人修改或正在处理，请刷新后再试。",
    err_RATE_LIMITED: "操作过于频繁，请稍后再试。", err_INTERNAL: "服务器出现故障，请稍后再试；如持续出现请联系技术人员。",
    err_UNSUPPORTED_MEDIA_TYPE: "请求格式有误，请刷新页面后重试。",
    err_BAD_CREDENTIALS: "用户名或密码错误。", err_LOCKED_OUT: "登录失败次数过多，账户已暂时锁定，请稍后再试。",
    err_CSRF_FAILED: "页面已过期，请刷新页面后重试。",
    err_INVALID_INVITATION: "该邀请链接无效、已过期或已被撤销，请联系书记员获取新的链接。",
    err_METHOD_NOT_ALLOWED: "请求有误，请刷新页面后重试。",
    err_TIMEOUT: "服务器没有及时回应，请检查网络后再试。", err_CLOSED: "与服务器的连接已断开。",
    err_NETWORK: "网络连接失败，请检查网络后再试。",
    // -- staff console (issue 12) --
    // -- party pages (issue 13) --
    // -- station director (issue 14) --
  },
  en: {
    app: "Shared Court", login: "Staff login", username: "Username", password: "Password", signin: "Sign in",
    logout: "Log out", hearings: "Hearings", case: "Case", title: "Title", start: "Start", state: "State",
    station: "Station", join_title: "Join an online hearing", join_checking: "Checking your invitation…",
    join_ok: "Invitation confirmed. Please wait until the judge or clerk admits you.",
    join_missing: "The link is incomplete; please use the full link the court sent you.",
    participants: "Participants", no_hearings: "No hearings scheduled.",
    state_scheduled: "Scheduled", state_opened: "Waiting room open", state_in_session: "In session",
    state_recess: "Recess", state_suspended: "Suspended", state_closed: "Closed",
    leave: "Leave", identity_title: "Identity check", legal_name: "Full name",
    id_digits: "Last digits of your ID number", confirm: "Confirm",
    consent_title: "Online proceedings", consent_submit: "Agree and enter the waiting room",
    consent_online: "I agree to take part online", consent_rules: "I have read and will follow the court's rules",
    consent_no_recording: "I will not record, photograph or share the hearing",
    waiting_title: "Waiting room", waiting_text: "Please wait; the judge or clerk will admit you.",
    you: "Me", ask_to_speak: "Ask to speak", muted_by_court: "The court has muted you",
    unmuted: "You may speak", asks_to_speak: "asks to speak", admit_all: "Admit all",
    mute_all: "Mute all", lock: "Lock", do_open: "Open waiting room", do_start: "Start",
    do_recess: "Recess", do_suspend: "Suspend (technical)", do_close: "Close",
    departures: "Departures", admit: "Admit", call_witness: "Call", dismiss_witness: "Dismiss",
    to_waiting: "To waiting room", mute: "Mute", unmute: "Unmute", spotlight: "Spotlight",
    remove: "Remove", remove_reason: "Breach of court rules", reason_prompt: "Reason",
    reason_opened: "Waiting room open", reason_in_session: "Hearing starts", reason_recess: "Recess",
    reason_suspended: "Technical trouble", reason_closed: "Hearing closed",
    no_devices: "Camera or microphone unavailable", enter_room: "Enter the waiting room",
    recording_hash_title: "Integrity value of the recording", confirm_hash: "I have checked it and confirm",
    recording_alert: "Recording problem", station_reported: "Station reports trouble",
    role_plaintiff: "plaintiff", role_defendant: "defendant", role_agent: "agent", role_witness: "witness",
    role_expert: "expert", role_interpreter: "interpreter", role_observer: "observer",
    role_mediator: "mediator", role_judge: "judge", role_clerk: "clerk", role_station: "station",
    pstate_invited: "not checked", pstate_identity_confirmed: "checked", pstate_waiting: "waiting",
    pstate_in_hearing: "in hearing", pstate_in_private_room: "private room",
    pstate_disconnected: "disconnected", pstate_left: "left", pstate_removed: "removed",
    cause_CLIENT_LEFT: "left", cause_REMOVED: "removed", cause_DISMISSED: "dismissed",
    cause_JUDGE_ENDED: "hearing closed", cause_DUPLICATE_SESSION: "joined on another device",
    cause_ICE_FAILED: "media connection failed", cause_NETWORK_LOST: "network lost",
    cause_HEARTBEAT_LOST: "connection timed out", cause_STATION_POWER: "station power failure",
    cause_STATION_NETWORK: "station network failure", cause_WORKER_DIED: "server fault",
    cause_SERVER_SHUTDOWN: "server restart",
    cause_PROTOCOL_VIOLATION: "disconnected by the server: too many or malformed messages",
    cause_SESSION_REVOKED: "your invitation link was withdrawn or replaced; use the new link",
    cause_JOIN_REFUSED: "you cannot join this hearing",
    cause_PRODUCER_CLOSED: "their audio and video stopped", cause_ROOM_CHANGED: "moved to another room",
    back: "Back", recordings: "Recordings", play_recording: "Play the recording back", recording_on: "recording", pause_recording: "Interrupt the recording", resume_recording: "Resume the recording", pb_title: "Recording playback",
    pb_recordings: "Recordings of this hearing", pb_root_hash: "Root hash", pb_signing_key: "Signing key",
    pb_status: "Sealed", pb_preparing: "Verifying and decrypting the recording…", pb_play: "Play",
    pb_pause: "Pause", pb_timeline: "Signed timeline",
    pb_verdict_intact: "Verified: intact", pb_verdict_gaps: "Verified: intact, with declared gaps",
    pb_verdict_tampered: "Verification FAILED: tampered or incomplete", pb_verdict_error: "Cannot verify",
    pb_sealed_complete: "normally", pb_sealed_recovered: "automatically after a crash",
    pb_sealed_failed: "when the disk was full",
    pb_state_recording: "recording", pb_state_complete: "sealed", pb_state_recovered: "sealed after a crash",
    pb_state_failed: "sealed on failure", pb_source_court: "court recording",
    pb_source_station_backup: "station's local backup", pb_none: "This hearing has no recording to play.",
    pb_failed: "Playback could not be prepared",
    pb_media_NO_PLAYBACK_KEY: "No playback key is configured; an archive key holder can export the recording.",
    pb_media_NOT_A_RECIPIENT: "This recording is not encrypted for the playback key; an archive key holder can export it (shared-court export).",
    pb_media_VERIFICATION_FAILED: "The recording failed verification; it is not decrypted.",
    pb_media_NO_MEDIA: "The recording holds no media.",
    pb_ev_recording_started: "recording started", pb_ev_recording_stopped: "recording stopped",
    pb_ev_resumed: "recording resumed", pb_ev_paused: "recording paused", pb_ev_joined: "joined",
    pb_ev_left: "left", pb_ev_media: "media started", pb_ev_gap: "network gap", pb_ev_incident: "incident",
    pb_ev_note: "note", pb_reason_RECESS: "recess", pb_reason_NON_PUBLIC_EVIDENCE: "non-public evidence",
    pb_reason_MEDIATION_OFF_RECORD: "mediation off the record",
    err_BAD_JSON: "The page sent malformed data; reload the page and try again.",
    err_BAD_REQUEST: "The request was malformed; reload the page and try again.",
    err_UNSUPPORTED_VERSION: "This page is out of date; please reload it.",
    err_UNKNOWN_TYPE: "This page is out of date; please reload it.",
    err_UNKNOWN_FIELD: "This page is out of date; please reload it.",
    err_MISSING_FIELD: "A required field is empty.",
    err_BAD_FIELD: "Something you entered is not valid; check it and try again.",
    err_TOO_LARGE: "That is too long; shorten it and try again.",
    err_UNAUTHORIZED: "Your session has ended; please sign in again.",
    err_FORBIDDEN: "You are not allowed to do this.",
    err_NOT_FOUND: "Not found: it may have been deleted, or it is not your court's.",
    err_WRONG_STATE: "This cannot be done right now; reload to see the current state.",
    err_CONFLICT: "Someone else changed this or it is being processed; reload and try again.",
    err_RATE_LIMITED: "Too many attempts; please wait a moment and try again.",
    err_INTERNAL: "The server had a fault; try again later, and tell the technical staff if it persists.",
    err_UNSUPPORTED_MEDIA_TYPE: "The request had the wrong format; reload the page and try again.",
    err_BAD_CREDENTIALS: "Wrong user name or password.",
    err_LOCKED_OUT: "Too many failed sign-ins; the account is locked for a while. Try again later.",
    err_CSRF_FAILED: "This page has expired; reload it and try again.",
    err_INVALID_INVITATION: "This invitation link is not valid, has expired or was withdrawn; ask the clerk for a new link.",
    err_METHOD_NOT_ALLOWED: "The request was malformed; reload the page and try again.",
    err_TIMEOUT: "The server did not answer in time; check the network and try again.",
    err_CLOSED: "The connection to the server was lost.",
    err_NETWORK: "Could not reach the server; check the network and try again.",
    // -- staff console (issue 12) --
    // -- party pages (issue 13) --
    // -- station director (issue 14) --
  },
};

export function lang() {
  const saved = localStorage.getItem("lang");
  return saved in STRINGS ? saved : "zh-CN";
}

export function t(key) {
  return STRINGS[lang()][key] ?? STRINGS["zh-CN"][key] ?? key;
}

export function applyStrings(root = document) {
  document.documentElement.lang = lang();
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  const picker = document.getElementById("lang");
  if (picker) {
    picker.value = lang();
    picker.onchange = () => { localStorage.setItem("lang", picker.value); applyStrings(); };
  }
}

// A sentence for an error from `api()` (ApiError), the signaling client (a code and a
// message) or fetch itself, in the page's language. Never the server's English text.
export function errorText(err) {
  const code = err?.code ?? (err instanceof TypeError ? "NETWORK" : "INTERNAL");
  const key = `err_${code}`;
  return STRINGS[lang()][key] ?? STRINGS["zh-CN"][key] ?? STRINGS[lang()].err_INTERNAL;
}

// A time in the court's zone (Asia/Shanghai unless the page says otherwise), 24-hour.
export function formatTime(iso, options = {}) {
  const zone = document.documentElement.dataset.timeZone || "Asia/Shanghai";
  return new Intl.DateTimeFormat(lang(), {
    timeZone: zone, hourCycle: "h23", year: "numeric", month: "long", day: "numeric",
    hour: "2-digit", minute: "2-digit", ...options,
  }).format(new Date(iso));
}
