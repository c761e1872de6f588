// The feed page: wires the modules under lib/ together. Every control ends in a plain GET
// navigation, so the URL is the whole state: back/forward work and a pasted link shows the same
// feed.

import { onZoneChange, renderTimes } from "./lib/times.js";
import { startNavigation, onSwap } from "./lib/navigation.js";
import { setUpFilterBar, startFilterBar } from "./lib/filterbar.js";
import { setUpLoadOlder } from "./lib/rows.js";
import { histogram } from "./lib/histogram.js";
import { facets } from "./lib/facets.js";
import { live } from "./lib/live.js";

/** Attach to the page's content: on load, and after every in-place filter change. */
function setUp() {
  setUpFilterBar();
  setUpLoadOlder();
  histogram.load();
  facets.load();
}

setUp();
onZoneChange(() => histogram.draw());
startNavigation();
startFilterBar();
onSwap(() => {
  setUp();
  renderTimes(document.querySelector(".feed-page"));
  live.bind();
  live.subscribe();
});
live.start();
// Browser tests reach the live socket through this.
window.eventfeedLive = live;
