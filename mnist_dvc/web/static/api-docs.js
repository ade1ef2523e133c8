// Lists the operations of /api/openapi.json: each path, method, summary, description and responses.
"use strict";

fetch("/api/openapi.json").then((response) => response.json()).then((spec) => {
  const container = document.getElementById("paths");
  for (const [path, operations] of Object.entries(spec.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      const section = document.createElement("section");
      const title = document.createElement("h2");
      title.textContent = `${method.toUpperCase()} ${path}: ${operation.summary}`;
      section.append(title);
      if (operation.description) {
        const text = document.createElement("p");
        text.textContent = operation.description;
        section.append(text);
      }
      const list = document.createElement("ul");
      for (const [status, response] of Object.entries(operation.responses)) {
        const item = document.createElement("li");
        item.textContent = `${status}: ${response.description}`;
        list.append(item);
      }
      section.append(list);
      container.append(section);
    }
  }
});
