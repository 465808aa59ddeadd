// Blocks, variables: the bodies of their forms, and reading a key file into a textarea.
// Loaded by templates/blocks/*.html and templates/variables/*.html (no inline script).
"use strict";

(() => {
  const MASK = "********";

  // A JSON field's text: the parsed value when it parses, else the text itself, so the
  // server's validator (which knows the field) says what is wrong with it.
  function jsonOrText(text) {
    try { return JSON.parse(text); } catch { return text; }
  }

  function fieldValue(box, input, editing) {
    const kind = box.dataset.kind;
    const secret = "secret" in box.dataset;
    if (input.type === "checkbox") return input.checked;
    const text = input.value;
    if (text.trim() === "") {
      // Editing: an emptied secret keeps what is stored; an emptied field is cleared.
      if (editing) return secret ? undefined : null;
      return undefined;
    }
    if (secret && text.trim() === MASK) return MASK;
    if (kind === "object" || kind === "array") return jsonOrText(text);
    if (kind === "integer" || kind === "number") {
      const number = Number(text);
      return Number.isNaN(number) ? text : number;
    }
    return text;
  }

  function blockData(form, editing) {
    const data = {};
    for (const box of form.querySelectorAll("[data-block-field]")) {
      const name = box.dataset.blockField;
      const clear = box.querySelector("[data-clears]");
      if (clear && clear.checked) { data[name] = null; continue; }
      const input = box.querySelector(`[name="data.${CSS.escape(name)}"]`);
      if (!input) continue;
      const value = fieldValue(box, input, editing);
      if (value !== undefined) data[name] = value;
    }
    return data;
  }

  skyrun.hook("block-create", (_, form) => ({
    block_type: form.dataset.blockType,
    name: form.querySelector('[name="name"]').value.trim(),
    data: blockData(form, false),
  }));
  skyrun.hook("block-update", (_, form) => ({ data: blockData(form, true) }));

  // <input type=file data-fills="ID">: the chosen file's text goes into the textarea ID.
  document.addEventListener("change", async (event) => {
    const input = event.target.closest("input[type=file][data-fills]");
    if (!input || !input.files.length) return;
    const target = document.getElementById(input.dataset.fills);
    try {
      target.value = await input.files[0].text();
      target.dispatchEvent(new Event("input", { bubbles: true }));
      skyrun.flash(`Read ${input.files[0].name} into ${target.labels[0]?.textContent.trim() || "the field"}.`, "ok");
    } catch (error) {
      skyrun.flash(`Could not read ${input.files[0].name}: ${error.message}`, "error");
    }
  });

  // Variables: the value is JSON or, when "text" is chosen, a plain string.
  skyrun.hook("variable-set", (_, form) => {
    const text = form.querySelector('[name="value"]').value;
    const asText = form.querySelector('[name="value_kind"]:checked')?.value === "text";
    let value = text;
    if (!asText) {
      try {
        value = JSON.parse(text);
      } catch (error) {
        const problem = new Error(`not valid JSON (${error.message}); choose "Text" to store it as a string`);
        problem.detail = [{ loc: ["value"], msg: problem.message }];
        throw problem;
      }
    }
    const tags = form.querySelector('[name="tags"]').value.split(",").map((t) => t.trim()).filter(Boolean);
    // The name is the URL's, not the body's (the API refuses unknown body fields).
    const name = form.querySelector('[name="name"]').value.trim();
    form.dataset.api = `/api/variables/${encodeURIComponent(name)}`;
    return { value, tags };
  });
})();
