// The booking fields (title, date, start, length, station, presiding, clerk) shared by
// scheduling a hearing (case page) and changing one (hearing page).
import { api, t, option, courtIso, FormErrors, value } from "./staff.js";

export const BOOKING_MESSAGES = {
  title: "sc_err_title_missing", scheduled_start: "sc_err_time_missing",
  duration_minutes: "sc_err_length", station_id: "sc_err_station_bad",
  presiding_user_id: "sc_err_presiding_bad", clerk_user_id: "sc_err_clerk_bad",
};

let choices = null;
export async function bookingChoices() {
  choices ??= Promise.all([api("GET", "/api/stations"), api("GET", "/api/staff")]);
  const [stations, staff] = await choices;
  return { stations, staff };
}

// Fill the selects (keeping what is chosen) from the court's stations and staff.
export async function fillBookingSelects(form, chosen = {}) {
  const { stations, staff } = await bookingChoices();
  const pick = (name) => chosen[name] ?? form.elements.namedItem(name).value;
  const station = form.elements.namedItem("station_id");
  const s0 = pick("station_id");
  station.replaceChildren(option("", t("sc_no_station")));
  for (const s of stations) station.append(option(s.id, s.name, s.id === s0));
  const presiding = form.elements.namedItem("presiding_user_id");
  const p0 = pick("presiding_user_id");
  presiding.replaceChildren(option("", t("sc_choose")));
  for (const u of staff.filter((x) => x.role === "judge" || x.role === "mediator")) {
    presiding.append(option(u.id, `${u.display_name}（${t(`role_${u.role}`)}）`, u.id === p0));
  }
  const clerk = form.elements.namedItem("clerk_user_id");
  const c0 = pick("clerk_user_id");
  clerk.replaceChildren(option("", t("sc_no_clerk")));
  for (const u of staff.filter((x) => x.role === "clerk")) clerk.append(option(u.id, u.display_name, u.id === c0));
}

// The request body, or null after showing what is wrong next to each field.
export function bookingBody(form, errors) {
  errors.clear();
  const title = value(form, "title");
  const date = value(form, "date");
  const time = value(form, "time");
  const minutes = Number(value(form, "duration_minutes"));
  if (!title) errors.add("title", t("sc_err_title_missing"));
  if (!date) errors.add("date", t("sc_err_date_missing"));
  if (!time) errors.add("time", t("sc_err_time_missing"));
  if (!Number.isInteger(minutes) || minutes < 5 || minutes > 720) errors.add("duration_minutes", t("sc_err_length"));
  if (!value(form, "presiding_user_id")) errors.add("presiding_user_id", t("sc_err_presiding_missing"));
  if (errors.show()) return null;
  return {
    title, scheduled_start: courtIso(date, time), duration_minutes: minutes,
    station_id: value(form, "station_id") || null,
    presiding_user_id: value(form, "presiding_user_id"),
    clerk_user_id: value(form, "clerk_user_id") || null,
  };
}

export { FormErrors };
