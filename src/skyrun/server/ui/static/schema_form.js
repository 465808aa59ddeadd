// Reads the fields templates/schema_form.html renders back into JSON values.
// skyrunSchemaForm.values(root) -> Map(name -> value); a field left empty maps to
// undefined (or null when its schema allows null). Bad input throws an error whose
// .detail is a 422-like list, so skyrun.showErrors puts it under the field.
"use strict";

const skyrunSchemaForm = (() => {
  class FieldError extends Error {
    constructor(path, msg) { super(msg); this.detail = [{ loc: path.split("."), msg }]; }
  }

  function emptyValue(input) {
    return "nullable" in input.dataset ? null : undefined;
  }

  function read(input) {
    const kind = input.dataset.schemaKind;
    const path = input.dataset.schemaPath;
    if (input.type === "checkbox") return input.checked;
    const raw = input.value;
    if (kind === "string") return raw === "" ? emptyValue(input) : raw;
    if (kind === "integer" || kind === "number") {
      if (raw === "") {
        if (input.validity && input.validity.badInput) throw new FieldError(path, "not a number");
        return emptyValue(input);
      }
      const value = Number(raw);
      if (!Number.isFinite(value)) throw new FieldError(path, "not a number");
      if (kind === "integer" && !Number.isInteger(value)) throw new FieldError(path, "must be a whole number");
      return value;
    }
    if (kind === "boolean" || kind === "enum" || kind === "block") {
      return raw === "" ? emptyValue(input) : JSON.parse(raw);
    }
    // JSON (arrays, objects, anything else the schema allows)
    if (raw.trim() === "") return emptyValue(input);
    try {
      return JSON.parse(raw);
    } catch (error) {
      throw new FieldError(path, `not valid JSON: ${error.message}`);
    }
  }

  function values(root) {
    const found = new Map();
    for (const input of root.querySelectorAll("[data-schema-path]")) {
      const name = input.dataset.schemaPath.split(".").pop();
      found.set(name, read(input));
    }
    return found;
  }

  // The values as an object, fields left empty out (a run's parameters).
  function given(root) {
    const body = {};
    for (const [name, value] of values(root)) if (value !== undefined) body[name] = value;
    return body;
  }

  return { values, given, FieldError };
})();
window.skyrunSchemaForm = skyrunSchemaForm;
