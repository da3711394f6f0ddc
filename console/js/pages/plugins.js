// Placeholder: plugins and hosts: per-host generations, skew, fleet reload with per-host results.
import {notBuilt} from '../ui.js';

export const overview = (main) => notBuilt(main, 'Plugins & hosts');
