// Placeholder: products → modules → features → plans and versions, and a feature's overrides.
import {notBuilt} from '../ui.js';

export const products = (main) => notBuilt(main, 'Catalog');
export const product = (main, p) => notBuilt(main, `Product ${p.product}`);
