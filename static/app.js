// Live job progress bars and the upload form. No framework: plain fetch/XHR against /api/v1/.
(function () {
  "use strict";
  function csrf() {
    const m = document.cookie.match(/csrftoken=([^;]+)/);
    if (m) return m[1];
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }
  function render(el, job) {
    el.dataset.state = job.state;
    const bar = el.querySelector(".bar");
    bar.setAttribute("aria-valuenow", job.progress);
    bar.querySelector("span").style.width = job.progress + "%";
    const state = el.querySelector(".state");
    state.textContent = job.state;
    state.className = "state state-" + job.state;
    el.querySelector(".job-text").childNodes[1].textContent = " " + job.progress + "% ";
    el.querySelector(".job-message").textContent = job.message || "";
  }
  function poll(el) {
    const id = el.dataset.jobId;
    fetch("/api/v1/jobs/" + id + "/", { credentials: "same-origin" })
      .then((r) => r.json())
      .then((job) => {
        render(el, job);
        if (job.state === "succeeded" || job.state === "failed") {
          if (document.body.dataset.reloaded !== "1" && el.closest("[data-reload-on-done]") !== null) {
            document.body.dataset.reloaded = "1";
          }
          setTimeout(() => window.location.reload(), 400);
        } else {
          setTimeout(() => poll(el), 800);
        }
      })
      .catch(() => setTimeout(() => poll(el), 2000));
  }
  document.querySelectorAll(".job").forEach((el) => {
    if (el.dataset.state === "queued" || el.dataset.state === "running") poll(el);
  });

  const form = document.getElementById("import-form");
  if (form) {
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const err = document.getElementById("import-error");
      err.hidden = true;
      const data = new FormData(form);
      data.append("dataset", form.dataset.dataset);
      const events = form.querySelector("#id_events").files[0];
      const users = form.querySelector("#id_users").files[0];
      if (!events) data.delete("events");
      if (!users) data.delete("users");
      if (!events && !users) { err.textContent = "Choose an events file, a users file or both."; err.hidden = false; return; }
      const max = Number(form.dataset.max);
      for (const f of [events, users]) {
        if (f && f.size > max) { err.textContent = f.name + " is larger than the limit of " + max.toLocaleString() + " bytes."; err.hidden = false; return; }
      }
      if (!data.get("mapping")) data.delete("mapping");
      const bar = form.querySelector(".upload-bar");
      bar.hidden = false;
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/v1/imports/");
      xhr.setRequestHeader("X-CSRFToken", csrf());
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable) {
          const pct = Math.round((100 * e.loaded) / e.total);
          bar.querySelector("span").style.width = pct + "%";
          bar.setAttribute("aria-valuenow", pct);
        }
      };
      xhr.onload = () => {
        let body = {};
        try { body = JSON.parse(xhr.responseText); } catch (e) { body = {}; }
        if (xhr.status === 200 || xhr.status === 202) {
          window.location = "/w/" + form.dataset.workspace + "/imports/" + body.id + "/";
        } else {
          const e = body.error || body;
          err.textContent = e.message ? e.message + (e.where ? " (" + e.where + ")" : "") : JSON.stringify(e);
          err.hidden = false;
        }
      };
      xhr.onerror = () => { err.textContent = "The upload failed: network error."; err.hidden = false; };
      xhr.send(data);
    });
  }
})();
