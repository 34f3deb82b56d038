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
    confirm_hash: "我已核对并确认", recording_alert: "录像异常",
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
    recording_alert: "Recording problem",
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
