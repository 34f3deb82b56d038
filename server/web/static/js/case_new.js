// Open a case: number, name, cause of action (from the court's list), hearing or mediation.
import { api, t, staffPage, option, causes, FormErrors, value } from "./staff.js";

const form = document.getElementById("case-form");
const errors = new FormErrors(form);
const NUMBER = /^[0-9A-Za-z()（）〔〕[\]\u3400-\u9fff-]+$/;

async function fillCauses() {
  const select = document.getElementById("case-cause");
  const chosen = select.value;
  select.replaceChildren(option("", t("sc_choose")));
  for (const c of await causes()) select.append(option(c.code, c.label, c.code === chosen));
}

function check() {
  errors.clear();
  const number = value(form, "number");
  if (!number) errors.add("number", t("sc_err_number_missing"));
  else if (!NUMBER.test(number)) errors.add("number", t("sc_err_number_format"));
  if (!value(form, "title")) errors.add("title", t("sc_err_title_missing"));
  if (!value(form, "cause")) errors.add("cause", t("sc_err_cause_missing"));
  return !errors.show();
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!check()) return;
  try {
    const c = await api("POST", "/api/cases", {
      number: value(form, "number"), title: value(form, "title"), cause: value(form, "cause"),
      mode: form.elements.namedItem("mode").value,
      kind: form.elements.namedItem("mode").value === "mediation" ? "mediation" : "civil",
    });
    location.assign(`/cases/${c.id}`);
  } catch (err) {
    errors.fromApi(err, {
      number: "sc_err_number_format", "number:CONFLICT": "sc_err_number_taken",
      title: "sc_err_title_missing", cause: "sc_err_cause_missing",
    });
  }
});

await staffPage(fillCauses);
await fillCauses();
