// flowd admin: small progressive enhancements, loaded as an ES module on
// every page (no inline scripts: the CSP allows only 'self').
import { localizeTimes } from "./localtime.js";
import { confirmForms } from "./confirm.js";
import { schedulePreview } from "./schedules.js";
import { keepToken } from "./debugger.js";
import { liveDashboard } from "./dashboard.js";

localizeTimes(document);
confirmForms(document);
schedulePreview(document);
keepToken(document);
liveDashboard(document);
