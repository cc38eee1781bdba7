/** The growth matrix for RMSNorm models (see `matrix.ts`). */
import { growthMatrix } from './matrix.js';

growthMatrix('rmsnorm');
