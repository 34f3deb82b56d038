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
