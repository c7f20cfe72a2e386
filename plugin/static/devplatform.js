// The development LMS's side of LTI platform storage: answers lti.put_data and
// lti.get_data from the tool's frame, keeping values in this page's memory.
(function () {
  "use strict";
  var box = document.getElementById("dev-platform");
  if (!box) { return; }
  var toolOrigin = box.dataset.toolOrigin;
  var store = new Map();
  window.addEventListener("message", function (event) {
    var data = event.data || {};
    if (event.origin !== toolOrigin || !event.source) { return; }
    if (data.subject === "lti.put_data") {
      store.set(toolOrigin + ":" + data.key, data.value);
      event.source.postMessage({ subject: "lti.put_data.response", message_id: data.message_id,
                                 key: data.key, value: data.value }, event.origin);
    } else if (data.subject === "lti.get_data") {
      var key = toolOrigin + ":" + data.key;
      var reply = { subject: "lti.get_data.response", message_id: data.message_id, key: data.key };
      if (store.has(key)) { reply.value = store.get(key); } else {
        reply.error = { code: "bad_request", message: "no such key" };
      }
      event.source.postMessage(reply, event.origin);
    }
  });
})();
