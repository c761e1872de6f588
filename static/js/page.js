// Every page: times in the reader's zone with the Local/UTC switch, and the keys that work
// everywhere. Page modules import the same lib/ modules, so each runs once.

import { startTimes } from "./lib/times.js";
import { startKeys } from "./lib/keys.js";

startTimes();
startKeys();
