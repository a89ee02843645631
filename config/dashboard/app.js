// KruxOS dashboard: overview with component health and the live event stream. The token stays in
// sessionStorage and travels only in the Authorization header (never in a URL).
"use strict";
const $ = (id) => document.getElementById(id);

async function api(path) {
  const res = await fetch(path, {
    headers: { authorization: `Bearer ${sessionStorage.getItem("krx_token") || ""}` },
  });
  if (res.status === 401) throw new Error("The token was refused.");
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.json();
}

function render(health) {
  $("status").textContent = health.status;
  $("status").className = `badge ${health.status}`;
  const body = $("components").querySelector("tbody");
  body.replaceChildren(
    ...health.components.map((c) => {
      const tr = document.createElement("tr");
      for (const text of [c.name, c.status, c.detail || ""]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      tr.children[1].className = c.status;
      return tr;
    }),
  );
}

async function refresh() {
  try {
    const [health, meta] = await Promise.all([api("/api/v1/health"), api("/api/v1/meta")]);
    $("appliance").textContent = `${meta.name} ${meta.version}`;
    render(health);
    $("login").hidden = true;
    $("overview").hidden = false;
    $("error").textContent = "";
  } catch (err) {
    $("error").textContent = err.message;
  }
}

$("connect").addEventListener("click", () => {
  sessionStorage.setItem("krx_token", $("token").value.trim());
  refresh();
});

if (sessionStorage.getItem("krx_token")) refresh();
setInterval(() => {
  if (!$("overview").hidden) refresh();
}, 5000);
