import type { Engine } from '../engine/engine.js';
import type { EngineExtension, InstalledExtension } from '../engine/extension.js';
import { fencedAttributePort } from './attribute-port.js';
import { createAttributeStep } from './attribute-step.js';
import { checkAttributeGraph } from './ordering.js';
import { AttributeTriggers } from './triggers.js';

/** The name attribute pipelines are installed under. */
export const ATTRIBUTE_EXTENSION = 'attribute-pipelines';

/** What the attribute-pipelines extension adds to an engine: its step type and its record-save triggers. */
export interface AttributeExtension extends InstalledExtension {
  /** Record-save triggers of attribute pipelines (debounced). */
  triggers: AttributeTriggers;
}

/**
 * Attribute pipelines as an engine extension: the internal `attribute` step type (its record reads and value writes
 * go through a port fenced by the attempt's lease), the check that refuses a pipeline writing a target another one
 * writes or closing a read cycle, and the record-save triggers. `createEngine` and the CLI install it.
 */
export function attributePipelines(): EngineExtension {
  return {
    name: ATTRIBUTE_EXTENSION,
    install(host): AttributeExtension {
      const triggers = new AttributeTriggers(
        {
          listPipelines: () => host.store.listPipelines(),
          startAttributeRun: (pipeline, input) => host.startRun(pipeline, input),
          onError: (err) => host.onError(err),
        },
        host.options.triggerDebounceMs,
      );
      const step = createAttributeStep({
        port: (ctx) => fencedAttributePort(host.store, ctx.lease),
        steps: host.steps,
        onValuesChanged: (dataset, field, ids) => void triggers.valuesChanged(dataset, field, ids).catch((err) => host.onError(err)),
      });
      return {
        triggers,
        stepTypes: [step],
        async checkPipeline(pipeline, registered) {
          if (pipeline.attribute && !pipeline.disabled) checkAttributeGraph(pipeline, await registered());
        },
        close: () => triggers.flush(),
      };
    },
  };
}

/** The record-save triggers of `engine`; undefined when attribute pipelines are not installed (nothing to trigger). */
export function attributeTriggersOf(engine: Pick<Engine, 'extension'>): AttributeTriggers | undefined {
  return engine.extension<AttributeExtension>(ATTRIBUTE_EXTENSION)?.triggers;
}
