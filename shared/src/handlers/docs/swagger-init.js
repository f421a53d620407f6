// Swagger UI on this API's own document. A file of its own, not an inline script, so that the
// page's Content-Security-Policy allows scripts from this origin alone. Every URL is relative to
// the page (/docs), so that it works wherever the API is served; the document's server is `/`,
// so "Try it out" calls the API that served the page.
SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  displayRequestDuration: true,
  // No badge asking validator.swagger.io about the document: nothing leaves this origin.
  validatorUrl: null,
});
