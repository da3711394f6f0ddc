// Placeholder: customers (list, create, show) and their instances.
import {notBuilt} from '../ui.js';

export const list = (main) => notBuilt(main, 'Customers');
export const create = (main) => notBuilt(main, 'New customer');
export const show = (main, p) => notBuilt(main, `Customer ${p.id}`);
