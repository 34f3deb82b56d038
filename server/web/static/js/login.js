import { api } from "./api.js";
import { applyStrings, errorText } from "./i18n.js";

applyStrings();
const form = document.getElementById("login-form");
const error = document.getElementById("error");
form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  error.textContent = "";
  try {
    await api("POST", "/api/auth/login", {
      username: form.username.value, password: form.password.value,
    });
    location.assign("/dashboard");
  } catch (err) {
    error.textContent = errorText(err);
  }
});
