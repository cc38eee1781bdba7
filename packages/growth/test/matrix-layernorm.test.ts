/** The growth matrix for LayerNorm models (see `matrix.ts`). */
import { growthMatrix } from './matrix.js';

growthMatrix('layernorm');
