/* lamed: AlephBet experiments declared with attributes, for pages whose Content-Security-Policy
   refuses inline scripts and styles. Load it after alephbet.min.js, one tag per experiment:

   <script src="alephbet.min.js"></script>
   <script src="lamed-alephbet.js" data-track-url="https://.../track" data-namespace="alephbet"
           data-experiment="button colour" data-variants="control,red" data-goals="bought"></script>

   The variant shown marks the page: <html data-button-colour="red"> (the experiment's name in
   lower case, dashes between words): style it in your stylesheet. A click on an element with
   data-lamed-goal="bought" completes that goal; your own scripts can call
   lamed.goals["bought"].complete(). The first tag's data-track-url and data-namespace serve all. */
(function () {
  "use strict";
  var data = document.currentScript.dataset;
  if (typeof AlephBet === "undefined") {
    console.error("lamed: AlephBet is not loaded: load alephbet.min.js before lamed-alephbet.js (and allow its origin in script-src)");
    return;
  }
  var lamed = window.lamed = window.lamed || {goals: {}, experiments: {}};
  if (!lamed.adapter) {
    if (!data.trackUrl) {
      console.error("lamed: the first lamed-alephbet.js tag needs data-track-url (the track URL lamed prints)");
      return;
    }
    var adapter = new AlephBet.LamedAdapter(data.trackUrl, data.namespace || "alephbet");
    // AlephBet 0.27.0 loads its queue of unacknowledged events before LamedAdapter sets its
    // queue_name, so events left unsent by the previous page would be lost: send them now.
    adapter._queue = JSON.parse(adapter._storage.get(adapter.queue_name) || "[]");
    adapter._flush();
    lamed.adapter = adapter;
    document.addEventListener("click", function (event) {
      var element = event.target.closest ? event.target.closest("[data-lamed-goal]") : null;
      var goal = element && lamed.goals[element.getAttribute("data-lamed-goal")];
      if (goal) goal.complete();
    });
  }
  if (!data.experiment) return;
  var attribute = "data-" + data.experiment.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
  var variants = {};
  (data.variants || "control").split(",").forEach(function (name) {
    name = name.trim();
    variants[name] = {activate: function () { document.documentElement.setAttribute(attribute, name); }};
  });
  var experiment = lamed.experiments[data.experiment] = new AlephBet.Experiment({
    name: data.experiment, tracking_adapter: lamed.adapter, variants: variants
  });
  (data.goals || "").split(",").forEach(function (name) {
    name = name.trim();
    if (!name) return;
    lamed.goals[name] = lamed.goals[name] || new AlephBet.Goal(name);
    experiment.add_goal(lamed.goals[name]);
  });
})();
