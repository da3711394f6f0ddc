// Placeholder: the dead-letter queue: list, inspect, replay, discard.
import {notBuilt} from '../ui.js';

export const list = (main) => notBuilt(main, 'Dead-letter queue');
export const show = (main, p) => notBuilt(main, `Dead letter ${p.id}`);
