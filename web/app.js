// Wasmline's web page: lists the registry's models.
const status = document.getElementById("status");
const models = await fetch("/api/v1/models").then((r) => r.json()).catch((e) => ({ error: String(e) }));
status.textContent = JSON.stringify(models);
