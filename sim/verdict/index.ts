// The verdict of a simulation run: what the engine says (engine-view), what the run saw
// (run-facts), and the invariants between them (verdict).
export { EngineReader, stockKey, type EngineView, type ListedOrder, type SkuFacts, type InventoryFigures } from './engine-view.ts';
export { runFacts, type RunFacts } from './run-facts.ts';
export { judge, type VerdictOptions } from './verdict.ts';
