/**
 * File formats and crash-safe file handling: safetensors, checkpoints, metrics, atomic writes.
 *
 * @module
 */
export {
  errnoCode,
  fsyncDir,
  ioError,
  processAlive,
  type ReplaceDirOptions,
  recoverDir,
  replaceDirAtomic,
  writeFileAtomic,
} from './atomic.js';
export {
  CHECKPOINT_FILES,
  CHECKPOINT_FORMAT,
  CHECKPOINT_FORMAT_VERSION,
  type CheckpointConfig,
  type CheckpointData,
  isCheckpointDir,
  MAX_CONFIG_BYTES,
  MAX_STATE_BYTES,
  type ReadCheckpointOptions,
  readCheckpoint,
  type TensorData,
  type WriteCheckpointOptions,
  writeCheckpoint,
} from './checkpoint.js';
export {
  type AcquireDirLockOptions,
  acquireDirLock,
  type DirLock,
  dirEntriesExceptLock,
  LOCK_FILE,
  type LockInfo,
  lockHolderState,
  parseLockInfo,
} from './lock.js';
export { type MetricsOpenOptions, type MetricsRecord, MetricsWriter, readMetrics } from './metrics.js';
export {
  decodeSafetensors,
  encodeSafetensors,
  readSafetensorsFile,
  SAFETENSORS_DTYPES,
  SAFETENSORS_MAX_HEADER_BYTES,
  type SafetensorsData,
  type SafetensorsDtype,
  type SafetensorsDtypeInfo,
  type SafetensorsFile,
  type SafetensorsTensor,
  writeSafetensorsFile,
} from './safetensors.js';
