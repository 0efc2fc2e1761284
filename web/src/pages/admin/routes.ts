// The administration pages, loaded together when one is first opened.
export { AdminIndex, AdminPage } from "./AdminPage";
export { ApiKeys } from "./ApiKeys";
export { Bridges } from "./Bridges";
export { Users } from "./Users";
