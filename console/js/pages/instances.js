// Placeholder: instances and one instance's page.
import {notBuilt} from '../ui.js';

export const list = (main) => notBuilt(main, 'Instances');
export const show = (main, p) => notBuilt(main, `Instance ${p.id}`);
