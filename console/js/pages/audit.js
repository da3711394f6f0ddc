// Placeholder: audit search by actor, entity, action and time.
import {notBuilt} from '../ui.js';

export const search = (main) => notBuilt(main, 'Audit');
