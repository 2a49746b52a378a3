// The sidecar's masking settings (a section of SidecarConfig).
import { z } from 'zod';

export const MaskingConfig = z
  .object({
    /** Extra rules (JSON or YAML) merged over the built-in ones; a bad file stops start-up. */
    rulesFile: z.string().optional(),
    /** Media types passed unscanned; default: media, fonts, archives, octet-stream, git data. */
    passTypes: z.array(z.string()).optional(),
    /**
     * Largest request body buffered for a `dlp: block` scan (bigger bodies are refused), and the
     * window outbound DLP decodes whole under `dlp: mask` (bigger bodies are decoded in segments).
     */
    maxBlockScanBytes: z.number().int().min(1024).max(1024 * 1024 * 1024).default(8 * 1024 * 1024),
    /** Largest git push buffered for scanning; bigger pushes are refused as unscannable. */
    maxPackBytes: z.number().int().min(1024).max(4 * 1024 * 1024 * 1024).default(256 * 1024 * 1024),
  })
  .strict();

export type MaskingConfig = z.infer<typeof MaskingConfig>;
