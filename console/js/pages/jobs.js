// Placeholder: the global job list with filters, and a job's live steps, attempts and errors.
import {notBuilt} from '../ui.js';

export const list = (main) => notBuilt(main, 'Jobs');
export const show = (main, p) => notBuilt(main, `Job ${p.id}`);
