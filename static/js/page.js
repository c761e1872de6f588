// Every page: times in the reader's zone with the Local/UTC switch, the colour scheme switch,
// and the keys that work everywhere. Page modules import the same lib/ modules, so each runs once.

import { startTimes } from "./lib/times.js";
import { startKeys } from "./lib/keys.js";
import { startTheme } from "./lib/theme.js";

startTimes();
startKeys();
startTheme();
