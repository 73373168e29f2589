// Starts the dashboard. A file rather than an inline script, so the Content-Security-Policy
// can forbid inline scripts altogether.
import init from "./fusebox_frontend.js";

init().catch((err) => {
  const banner = document.createElement("div");
  banner.className = "banner";
  banner.setAttribute("role", "alert");
  banner.textContent = "The dashboard failed to start. See the browser console.";
  document.body.prepend(banner);
  console.error(err);
});
